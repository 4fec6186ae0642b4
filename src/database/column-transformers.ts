/** SQL `bigint` comes back from Postgres as a string; sizes and change numbers here always fit a JS number. */
export const bigintAsNumber = {
  to: (value: number | null) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};
