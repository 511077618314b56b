/**
 * GET on the admin API (`/admin/api/...`, docs/operations.md "Operator's console") with a service
 * token: the status, the answer's size in bytes (what the console's poll costs) and its JSON body.
 */
export function adminGet(base: () => string, serviceToken: string): <T>(path: string) => Promise<{ status: number; bytes: number; body: T }> {
  return async <T>(path: string) => {
    const res = await fetch(`${base()}${path}`, { headers: { authorization: `Bearer ${serviceToken}` } });
    const text = await res.text();
    return { status: res.status, bytes: Buffer.byteLength(text), body: JSON.parse(text) as T };
  };
}
