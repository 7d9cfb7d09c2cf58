// A gRPC call's :path, /package.Service/Method, split into the API (the fully-qualified service)
// and the method; both directions route by it.
export function splitPath(path: string | undefined): { api: string; method: string } | undefined {
  if (path === undefined || path.length < 4 || path.charCodeAt(0) !== 47) return undefined;
  const slash = path.indexOf('/', 1);
  if (slash <= 1 || slash === path.length - 1 || path.indexOf('/', slash + 1) !== -1) return undefined;
  return { api: path.slice(1, slash), method: path.slice(slash + 1) };
}
