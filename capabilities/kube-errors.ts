/** Reading KFC's thrown responses: which 404 means "no such object" and which "no such API". */
export function httpStatus(err: unknown): number | undefined {
  return (err as { status?: number })?.status;
}

/** A 404 for a missing object carries a Status naming the object; a missing API does not. */
export function isObjectNotFound(err: unknown, name: string): boolean {
  const data = (err as { data?: { kind?: string; details?: { name?: string } } })?.data;
  return httpStatus(err) === 404 && data?.kind === "Status" && data?.details?.name === name;
}

/** Runs a Get; a missing object is undefined, a missing API throws `ApiMissing`. */
export async function getOrUndefined<T>(
  name: string,
  get: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await get();
  } catch (err) {
    if (isObjectNotFound(err, name)) return undefined;
    if (httpStatus(err) === 404) throw new ApiMissing();
    throw err;
  }
}

export class ApiMissing extends Error {
  constructor() {
    super("the API is not served");
  }
}
