/**
 * Several hubs' sessions as one bus, for tests of two hubs over one store in one process: delivered wherever the
 * agent is connected (what Redis does between nodes; src/cluster/ has the real one).
 *
 * @module
 */

import type { Message } from "../../src/core/message.ts";
import type { AgentBus, AgentBusFactory } from "../../src/hub/bus.ts";
import type { Delivery, DeliveryReport } from "../../src/hub/delivery.ts";

/** A bus factory for each hub: `all` collects every hub's sessions. */
export function sharedBus(all: Delivery[]): AgentBusFactory {
  return (local: Delivery): AgentBus => {
    all.push(local);
    const where = (agent: string) => all.filter((d) => d.isOnline(agent));
    return {
      deliver(agent: string, m: Message): DeliveryReport {
        let sockets = 0;
        for (const d of where(agent)) sockets += d.message(agent, m).sockets;
        return { sockets, needsAck: true };
      },
      send: (agent, event) => where(agent).reduce((n, d) => n + d.send(agent, event), 0),
      readsOnWrite: () => false,
      isOnline: (agent) => where(agent).length > 0,
      online: () => new Set(all.flatMap((d) => [...d.agents()])),
    };
  };
}
