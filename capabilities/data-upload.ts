/**
 * The data-upload capability: everything the module does about EdgeDevices, EdgeWorkloads and
 * their storage. Bindings are added by the module issue; the kinds are registered here so that
 * the bundle always carries them.
 */
import { Capability } from "pepr";
import "./generated/edgedevice-v1alpha1";
import "./generated/edgeworkload-v1alpha1";
import "./generated/objectbucketclaim-v1alpha1";

export const DataUpload = new Capability({
  name: "data-upload",
  description:
    "Gives each edge device its S3 storage config and injects /export into EdgeWorkloads",
});
