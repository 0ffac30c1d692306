/**
 * What integration tests know about the local servers: the variables `hack/up.sh` prints.
 * A test run without them fails at once with the command that sets them.
 */
function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run integration tests through "npm test", or eval "$(hack/up.sh)" first`,
    );
  }
  return value;
}

export const testEnv = {
  get kubeconfig() {
    return required("KUBECONFIG");
  },
  get s3() {
    return {
      endpoint: required("EDGE_S3_ENDPOINT"),
      tlsEndpoint: required("EDGE_S3_TLS_ENDPOINT"),
      tlsCaFile: required("EDGE_S3_TLS_CA"),
      region: required("EDGE_S3_REGION"),
      accessKeyId: required("EDGE_S3_ACCESS_KEY_ID"),
      secretAccessKey: required("EDGE_S3_SECRET_ACCESS_KEY"),
      forcePathStyle: true,
    };
  },
  /** The S3 server's binary, for tests that start and stop a server of their own. */
  get versitygw() {
    return required("EDGE_VERSITYGW_BIN");
  },
  get logDir() {
    return required("EDGE_LOG_DIR");
  },
};
