/**
 * Sizes and rates as Kubernetes writes them (resource quantities): `100Mi`, `1.5G`, `512Ki`.
 * Binary suffixes (Ki, Mi, Gi, Ti) are powers of 1024, decimal ones (k, M, G, T) of 1000; a
 * bare number is bytes. Pure; shared by the module (which turns the EdgeWorkload's and
 * EdgeDevice's strings into numbers in the device config) and the README's examples.
 */

const SUFFIX: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** The pattern the CRDs give such fields (the same as parseQuantity accepts). */
export const QUANTITY_PATTERN = "^[0-9]+(\\.[0-9]+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$";

/** Bytes for a quantity, rounded down; undefined when it is not one. */
export function parseQuantity(text: string): number | undefined {
  const match = new RegExp(QUANTITY_PATTERN).exec(text);
  if (!match) return undefined;
  const number = Number(text.slice(0, text.length - (match[2]?.length ?? 0)));
  const bytes = Math.floor(number * SUFFIX[match[2] ?? ""]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A byte count for people: 1.5 MiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
