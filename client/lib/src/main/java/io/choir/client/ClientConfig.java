package io.choir.client;

import java.util.List;
import java.util.Random;

/** ClientConfig is the validated settings of one client, as a builder produced them. */
record ClientConfig(
    List<Endpoint> endpoints,
    long requestTimeoutMs,
    long attemptTimeoutMs,
    long connectTimeoutMs,
    int maxInFlight,
    int maxFrameBytes,
    ReadConsistency readConsistency,
    int eventLoopThreads,
    Random random) {
  ClientConfig {
    endpoints = List.copyOf(endpoints);
  }
}
