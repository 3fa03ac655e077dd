/**
 * kefu's version: what `kefu --version` prints and the start log's `listening` line carries. One constant, changed
 * when a release is tagged.
 *
 * @module
 */

/** The version of this kefu. */
export const VERSION = "0.21.0";
