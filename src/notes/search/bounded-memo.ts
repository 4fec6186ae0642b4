/**
 * `compute` remembered per key for at most `entries` keys: the map is emptied when it is full, so memory
 * stays bounded while the keys that repeat (words of notes, owners) are computed once in a while.
 */
export function boundedMemo<V>(entries: number, compute: (key: string) => V): (key: string) => V {
  const cache = new Map<string, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = compute(key);
      if (cache.size >= entries) cache.clear();
      cache.set(key, value);
    }
    return value;
  };
}
