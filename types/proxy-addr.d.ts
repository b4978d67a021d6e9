declare module 'proxy-addr' {
  const proxyAddr: {
    /** Express's parser of "trust proxy" lists: throws a TypeError on a value it cannot use. */
    compile(val: string | string[]): (addr: string, i: number) => boolean;
  };
  export default proxyAddr;
}
