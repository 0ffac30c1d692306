/**
 * TEST ONLY: fulfils ObjectBucketClaims against the local S3 server the way NooBaa does, so the
 * OCS path is tested end to end without a storage operator. It installs the OBC CRD (as the
 * operator would), then every second binds each unbound claim: creates a bucket named after
 * spec.generateBucketName, a ConfigMap and a Secret with the claim's name (owned by it), and sets
 * status.phase to Bound. Like NooBaa, it writes an in-cluster Service as BUCKET_HOST
 * (s3.openshift-storage.svc, port 443), which no device can reach: the module must turn it into
 * an endpoint devices use (its EDGE_UPLOAD_OBC_ENDPOINT setting or the `s3` Route). Reads the S3
 * settings that hack/up.sh prints. Stop it with SIGTERM.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { K8s, kind } from "kubernetes-fluent-client";
import { createS3Client } from "../agent/s3/client";
import { ObjectBucketClaim } from "../capabilities/generated/objectbucketclaim-v1alpha1";

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: eval "$(hack/up.sh)" first`);
  return value;
};
const endpoint = new URL(env("EDGE_S3_ENDPOINT"));
const s3 = {
  endpoint: endpoint.origin,
  region: env("EDGE_S3_REGION"),
  accessKeyId: env("EDGE_S3_ACCESS_KEY_ID"),
  secretAccessKey: env("EDGE_S3_SECRET_ACCESS_KEY"),
};
const client = createS3Client(s3);
/** What NooBaa writes on OpenShift Data Foundation: its S3 Service. */
const IN_CLUSTER_HOST = "s3.openshift-storage.svc";
const log = (msg: string) =>
  process.stderr.write(`${new Date().toISOString()} obc-provisioner: ${msg}\n`);

async function bind(claim: ObjectBucketClaim): Promise<void> {
  const { name, namespace, uid } = claim.metadata as {
    name: string;
    namespace: string;
    uid: string;
  };
  const bucket =
    claim.spec?.bucketName ||
    `${claim.spec?.generateBucketName ?? name}-${randomBytes(3).toString("hex")}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const owner = [
    {
      apiVersion: "objectbucket.io/v1alpha1",
      kind: "ObjectBucketClaim",
      name,
      uid,
      controller: true,
    },
  ];
  await K8s(kind.ConfigMap).Apply({
    metadata: { name, namespace, ownerReferences: owner },
    data: {
      BUCKET_HOST: IN_CLUSTER_HOST,
      BUCKET_PORT: "443",
      BUCKET_NAME: bucket,
      BUCKET_REGION: s3.region,
      BUCKET_SUBREGION: "",
    },
  });
  await K8s(kind.Secret).Apply({
    metadata: { name, namespace, ownerReferences: owner },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
  });
  // A JSON Patch of the one field, as a separate controller (NooBaa, Rook) changes a claim: an
  // Apply here would share the module's field manager and strip the labels the module set.
  await K8s(ObjectBucketClaim, { name, namespace }).Patch([
    { op: "add", path: "/spec/bucketName", value: bucket },
  ]);
  await K8s(ObjectBucketClaim).PatchStatus({
    metadata: { name, namespace },
    status: { phase: "Bound" },
  });
  log(`bound ${namespace}/${name} to bucket ${bucket}`);
}

async function main(): Promise<void> {
  execFileSync("kubectl", ["apply", "-f", "manifests/crds/objectbucketclaim.yaml"], {
    stdio: "ignore",
  });
  log(`ready; buckets on ${endpoint.origin}`);
  let stopping = false;
  process.on("SIGTERM", () => (stopping = true));
  process.on("SIGINT", () => (stopping = true));
  while (!stopping) {
    try {
      for (const claim of (await K8s(ObjectBucketClaim).Get()).items) {
        if (claim.status?.phase !== "Bound" && !claim.metadata?.deletionTimestamp)
          await bind(claim);
      }
    } catch (err) {
      log(`error: ${(err as Error)?.message ?? JSON.stringify(err)}`);
    }
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
  log("stopped");
}

void main();
