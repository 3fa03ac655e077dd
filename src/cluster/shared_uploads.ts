/**
 * Who uploaded which file, on the cluster's engine: an agent uploads through one node (an HTTP request the load
 * balancer gives any node) and sends the file from its socket, often on another. One shared value per pair
 * (`upload:<agent>\n<name>`) with a life of three days, WeChat's for temporary media: past it the agent uploads the
 * file again, as after a restart of one node.
 *
 * @module
 */

import type { SharedUploads } from "../media/ownership.ts";
import type { Engine } from "./engine.ts";

const LIFE_MS = 3 * 86_400_000;

/** Uploads' owners shared through `engine`. */
export function sharedUploads(engine: Engine): SharedUploads {
  return {
    async add(agent, name) {
      await engine.put(`upload:${agent}\n${name}`, "1", LIFE_MS);
    },
    async has(agent, name) {
      return (await engine.get(`upload:${agent}\n${name}`)) !== undefined;
    },
  };
}
