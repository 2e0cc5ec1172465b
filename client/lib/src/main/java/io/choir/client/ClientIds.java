package io.choir.client;

import java.security.SecureRandom;

/**
 * ClientIds makes client instance ids (see {@link ChoirClient#clientId()}): a random one for each
 * ChoirClient, or a fixed one a test or a DeterministicClient chose, in both cases with the top bit set.
 */
final class ClientIds {
  private ClientIds() {}

  /** A random client instance id, with the top bit set (so never 0). */
  static long newClientId() {
    return instanceId(new SecureRandom().nextLong());
  }

  /**
   * id as a client instance id: its top bit set, so that it never equals a session id (an op
   * number, far below 2^63). Were they equal, a registration and a write of a session could share
   * a (client_id, request_id) pair while both are in flight, and the primary would join one to
   * the other's log entry.
   */
  static long instanceId(long id) {
    return id | Long.MIN_VALUE;
  }
}
