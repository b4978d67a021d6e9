declare module 'proxy-addr' {
  /** Express's parser of "trust proxy" lists: throws a TypeError on a value it cannot use. */
  function compile(val: string | string[]): (addr: string, i: number) => boolean;
  const proxyAddr: { compile: typeof compile };
  export default proxyAddr;
}
