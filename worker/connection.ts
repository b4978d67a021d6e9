// How every process reaches Temporal: local dev server, self-hosted with TLS, or Temporal Cloud.
import fs from 'node:fs';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import type { AppConfig } from '../config';

export function temporalAddress(config: AppConfig): string {
  return config.temporal.address ?? `127.0.0.1:${config.temporal.port}`;
}

export function nativeConnectionOptions(config: AppConfig): NativeConnectionOptions {
  const { tlsCert, tlsKey, apiKey } = config.temporal;
  return {
    address: temporalAddress(config),
    tls:
      tlsCert && tlsKey
        ? { clientCertPair: { crt: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) } }
        : apiKey
          ? true
          : undefined,
    apiKey,
    // The SDK gzips every request by default; a lead's are small, and the profile of a night found
    // the compressor's allocations to be about half of all the process's malloc (README, row s).
    grpcCompression: { codec: config.temporal.grpcCompression },
  };
}

/**
 * One native connection, shared by the client and the in-process worker, is what lets a workflow
 * start eagerly: its first task is handed straight back to this worker, skipping a poll round trip.
 */
export function connectToTemporal(config: AppConfig): Promise<NativeConnection> {
  return NativeConnection.connect(nativeConnectionOptions(config));
}
