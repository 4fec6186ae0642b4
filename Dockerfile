# The API as a container: build with the dev dependencies, run with production ones only.
# Not exercised in this project's CI (no Docker engine there); see docs/operations.md.

FROM node:24-slim AS build
WORKDIR /app
# The lock file covers the client workspace too, so its package.json comes along.
COPY package.json package-lock.json ./
COPY client/package.json ./client/
RUN npm ci
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY client/package.json ./client/
RUN npm ci --omit=dev --workspaces=false && npm cache clean --force
# Renditions and waveforms (docs/renditions.md): Debian's ffmpeg, updated with the base image's security fixes.
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
# The SQLite file and the local driver's objects, when those defaults are used.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000 9464
# Liveness only: a database or store outage must not make the orchestrator restart the container.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# node itself as PID 1's child-free process: SIGTERM reaches the app, which drains and exits 0.
CMD ["node", "dist/main.js"]
