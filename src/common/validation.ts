import {
  ArgumentMetadata,
  createParamDecorator,
  ExecutionContext,
  Injectable,
  PipeTransform,
  Type,
  ValidationError,
  ValidationPipe,
} from '@nestjs/common';
import {
  getMetadataStorage,
  ValidateBy,
  ValidateIf,
  type ValidationArguments,
  type ValidationOptions,
} from 'class-validator';
import { textProblem } from './text-rules';
import { AppError, ErrorDetail } from './app-error';

/** Request bodies of this API are flat; anything much deeper is an attack on the validators' recursion. */
const MAX_BODY_DEPTH = 16;
/**
 * Object keys and array items in one body or query, all levels together. The API's inputs have a
 * handful of fields; class-transformer's work grows with the square of an object's key count
 * (it de-duplicates keys with indexOf), so wider inputs are refused by a linear count first.
 */
export const MAX_INPUT_ENTRIES = 1_000;
/** At most this many unknown fields are named in an answer. */
const MAX_UNKNOWN_FIELDS_LISTED = 10;

/**
 * The request-body pipe: unknown fields are refused (a typo must not be silently ignored) and every
 * failure comes back as one VALIDATION_FAILED error listing each field.
 */
export class ApiValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      transform: true,
      validationError: { target: false, value: false },
      exceptionFactory: (errors) =>
        new AppError('VALIDATION_FAILED', 'The request is not valid.', { details: flatten(errors) }),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const shape = measureInput(value, MAX_BODY_DEPTH, MAX_INPUT_ENTRIES);
    if (shape === 'too deep') {
      throw new AppError(
        'VALIDATION_FAILED',
        `The ${metadata.type} is nested more than ${MAX_BODY_DEPTH} levels deep.`,
      );
    }
    if (shape === 'too wide') {
      throw new AppError(
        'VALIDATION_FAILED',
        `The ${metadata.type} has more than ${MAX_INPUT_ENTRIES} fields and items in all; this API's inputs are small.`,
      );
    }
    // Nest's pipe would turn a `null` body into `{}` (an empty, valid update): a DTO body is an object or nothing.
    if (metadata.type === 'body' && value !== undefined && knownFieldsOf(metadata).size > 0 && !isPlainObject(value)) {
      // Named like the fields an empty object would miss, or as the body itself when none would be.
      const missing = await this.problemsOf({}, metadata);
      throw new AppError('VALIDATION_FAILED', 'The request body must be a JSON object.', {
        details: missing.length > 0 ? missing : [{ field: '', message: 'the request body must be a JSON object' }],
      });
    }
    const unknown = unknownFields(value, metadata);
    if (unknown.length === 0) return super.transform(value, metadata);
    // Only the known fields go on to class-transformer; the unknown ones are reported with them.
    const unknownSet = new Set(unknown);
    const knownOnly = Object.fromEntries(
      Object.entries(value as Record<string, unknown>).filter(([key]) => !unknownSet.has(key)),
    );
    const others = await this.problemsOf(knownOnly, metadata);
    throw new AppError('VALIDATION_FAILED', 'The request is not valid.', {
      details: [...unknownFieldDetails(unknown), ...others],
    });
  }

  /** What the validators say about `value`, without throwing. */
  private async problemsOf(value: unknown, metadata: ArgumentMetadata): Promise<readonly ErrorDetail[]> {
    try {
      await super.transform(value, metadata);
      return [];
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return error.details ?? [];
    }
  }
}

export function createValidationPipe(): ApiValidationPipe {
  return new ApiValidationPipe();
}

/**
 * An optional field that, when present, must be valid: unlike `@IsOptional()`, `null` is refused
 * rather than passed through to the database.
 */
export function Optional(options?: ValidationOptions): PropertyDecorator {
  return ValidateIf((_object, value) => value !== undefined, options);
}

/** Text as the API stores it, exactly as sent: see `textProblem` for what is refused and why. */
export function NoControlCharacters(options: { allowLineBreaks: boolean }): PropertyDecorator {
  return ValidateBy({
    name: 'plainText',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || textProblem(value, options) === null,
      defaultMessage: (args?: ValidationArguments) =>
        `${args?.property ?? 'text'} ${typeof args?.value === 'string' ? (textProblem(args.value, options) ?? '') : ''}`,
    },
  });
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Path ids are UUIDs (any case, answered in the lower case the server makes them in); anything else is a malformed request. */
@Injectable()
export class UuidParamPipe implements PipeTransform<string, string> {
  constructor(private readonly name: string) {}

  transform(value: string, _metadata?: ArgumentMetadata): string {
    if (typeof value !== 'string' || !UUID_V4.test(value)) {
      throw new AppError('VALIDATION_FAILED', `${this.name} must be a UUID.`, {
        details: [{ field: this.name, message: `${this.name} must be a UUID` }],
      });
    }
    return value.toLowerCase();
  }
}

export function uuidParam(name: string): UuidParamPipe {
  return new UuidParamPipe(name);
}

export function lowerCaseUuid({ value }: { value: unknown }): unknown {
  return typeof value === 'string' && UUID_V4.test(value) ? value.toLowerCase() : value;
}

/**
 * Depth and width of a parsed input in one linear pass that stops at the first limit passed. Iterative,
 * so the check itself cannot overflow the stack it protects.
 */
function measureInput(value: unknown, maxDepth: number, maxEntries: number): 'ok' | 'too deep' | 'too wide' {
  const stack: [unknown, number][] = [[value, 0]];
  let entries = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= maxDepth) return 'too deep';
    // Counted before anything is copied: Object.keys of a wide object is linear, its transform is not.
    const children = Array.isArray(current) ? current : Object.values(current);
    entries += children.length;
    if (entries > maxEntries) return 'too wide';
    for (const child of children) stack.push([child, depth + 1]);
  }
  return 'ok';
}

/**
 * Unknown top-level fields, found from the DTO's own validation metadata before class-transformer
 * builds anything from the input (what `forbidNonWhitelisted` finds, without its cost).
 */
function unknownFields(value: unknown, metadata: ArgumentMetadata): string[] {
  const { metatype } = metadata;
  if (typeof metatype !== 'function' || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const known = knownFields(metatype);
  return known.size === 0 ? [] : Object.keys(value).filter((key) => !known.has(key));
}

function unknownFieldDetails(unknown: readonly string[]): ErrorDetail[] {
  const listed = unknown
    .slice(0, MAX_UNKNOWN_FIELDS_LISTED)
    .map((field) => ({ field, message: `${field} is not a known field` }));
  const more = unknown.length - listed.length;
  return more > 0 ? [...listed, { field: '', message: `and ${more} more unknown fields` }] : listed;
}

function knownFieldsOf(metadata: ArgumentMetadata): ReadonlySet<string> {
  return typeof metadata.metatype === 'function' ? knownFields(metadata.metatype) : new Set();
}

function isPlainObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const knownFieldsCache = new WeakMap<object, ReadonlySet<string>>();

function knownFields(metatype: Type<unknown>): ReadonlySet<string> {
  let known = knownFieldsCache.get(metatype);
  if (!known) {
    known = new Set(
      getMetadataStorage()
        .getTargetValidationMetadatas(metatype, '', true, false)
        .map((entry) => entry.propertyName),
    );
    knownFieldsCache.set(metatype, known);
  }
  return known;
}

function flatten(errors: ValidationError[], parent = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({
      field,
      message: message.replace(/^property (\S+) should not exist$/, '$1 is not a known field'),
    }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** A positive integer path parameter: plain digits up to 2^31 − 1, else a malformed request naming it. */
export function parsePositiveIntegerParam(value: unknown, name: string): number {
  const number = typeof value === 'string' && /^[1-9][0-9]{0,9}$/.test(value) ? Number(value) : NaN;
  if (!(number <= 2_147_483_647)) {
    throw new AppError('VALIDATION_FAILED', `${name} must be a positive integer.`, {
      details: [{ field: name, message: `${name} must be a positive integer` }],
    });
  }
  return number;
}

/**
 * A positive integer path parameter (a note's version), read from the raw path: as a custom parameter
 * decorator, the global pipe does not convert it first (which would take `1e3` or `0x10` for numbers).
 */
export const PositiveIntegerParam = createParamDecorator((name: string, context: ExecutionContext): number =>
  parsePositiveIntegerParam(
    context.switchToHttp().getRequest<{ params: Record<string, unknown> }>().params[name],
    name,
  ),
);
