import { PeprModule } from "pepr";
// cfg loads the module's pepr configuration from package.json
import cfg from "./package.json";
import { DataUpload } from "./capabilities/data-upload";

/**
 * The module's entry point. Importing it starts the admission/watch server, so tests import
 * capabilities, never this file.
 */
new PeprModule(cfg, [DataUpload]);
