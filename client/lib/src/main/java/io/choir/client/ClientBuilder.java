package io.choir.client;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;

/**
 * ClientBuilder holds the settings {@link ChoirClient.Builder} and {@link DeterministicClient.Builder}
 * share, with their defaults and their validation, so that both clients are configured, and fail on a
 * bad setting, the same way. B is the public builder, so that chained calls keep its type. Each public
 * builder adds what only its client has (connect timeout and I/O threads; scheduler and transport) and
 * exposes the client id and the jitter source as it chooses (a test hook, or a required setting).
 *
 * @param <B> the public builder type, returned by every setter
 */
abstract class ClientBuilder<B extends ClientBuilder<B>> {
  /** Default for {@link #requestTimeout}: long enough to ride out a view change. */
  public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(5);
  /**
   * Default for {@link #attemptTimeout}: twice the replicas' default election timeout (500 ms). A
   * primary that has not answered for that long is paused or cut off, and its backups have started
   * electing a new one by then, so the client tries them rather than keep waiting.
   */
  public static final Duration DEFAULT_ATTEMPT_TIMEOUT = Duration.ofSeconds(1);
  /** Default for {@link #maxInFlight}. */
  public static final int DEFAULT_MAX_IN_FLIGHT = 1024;
  /** Default for {@link #maxFrameBytes}: a 16 MiB value plus room for the key and the envelope. */
  public static final int DEFAULT_MAX_FRAME_BYTES = (16 << 20) + (64 << 10);

  private final List<Endpoint> endpoints = new ArrayList<>();
  private Duration requestTimeout = DEFAULT_REQUEST_TIMEOUT;
  private Duration attemptTimeout = DEFAULT_ATTEMPT_TIMEOUT;
  private int maxInFlight = DEFAULT_MAX_IN_FLIGHT;
  private int maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  private ReadConsistency readConsistency = ReadConsistency.LINEARIZABLE;
  private Long clientId;

  ClientBuilder() {}

  /** This builder as its public type, for chaining. */
  abstract B self();

  /**
   * The replicas' client addresses, as the client connects to them and as the replicas name each other
   * in NOT_PRIMARY hints. Requests go to the first until it fails or names another primary; status()
   * asks each of them. Replaces earlier endpoints; duplicates count once.
   *
   * @param endpoints host:port strings ([v6-address]:port for IPv6), at least one
   * @return this builder
   * @throws IllegalArgumentException when the list is empty or an entry is not host:port (the earlier
   *     endpoints are kept then)
   */
  public B endpoints(List<String> endpoints) {
    if (endpoints == null || endpoints.isEmpty()) {
      throw new IllegalArgumentException("at least one endpoint is required");
    }
    List<Endpoint> parsed = new ArrayList<>();
    for (String e : endpoints) {
      Endpoint endpoint = Endpoint.parse(e);
      if (!parsed.contains(endpoint)) {
        parsed.add(endpoint);
      }
    }
    this.endpoints.clear();
    this.endpoints.addAll(parsed);
    return self();
  }

  /**
   * The whole budget of one call, including the wait for an in-flight slot, connects and retries, on
   * the client's clock (a DeterministicClient's is its scheduler's).
   *
   * @param requestTimeout positive, at least 1 ms
   * @return this builder
   */
  public B requestTimeout(Duration requestTimeout) {
    this.requestTimeout = positive(requestTimeout, "requestTimeout");
    return self();
  }

  /**
   * How long one attempt waits for an answer from one replica before the call moves on to the next
   * one, with the same request id (so the write still happens at most once). This is what makes
   * failover fast when the primary is paused or cut off rather than dead: its connection stays up,
   * but nothing comes back. Set it to about twice the replicas' {@code election_timeout_ms} (the
   * default 1 s matches their default 500 ms): shorter, and a slow but healthy primary is left for
   * backups that only redirect back; longer, and writes wait longer after a failure. A call whose
   * attempt timed out after the request was sent may end in ChoirTimeoutException (outcome unknown)
   * rather than UnavailableException. It also caps the pause between retries at a quarter of it.
   * Status requests, which ask one replica, wait for the request timeout instead.
   *
   * @param attemptTimeout positive, at least 1 ms
   * @return this builder
   */
  public B attemptTimeout(Duration attemptTimeout) {
    this.attemptTimeout = positive(attemptTimeout, "attemptTimeout");
    return self();
  }

  /**
   * The most requests this client has outstanding at once. A call beyond it waits (without blocking
   * async callers) for a slot, in arrival order; if none frees while at least a tenth of its request
   * timeout remains, it fails with {@link BusyException} without being sent. Bounds client memory and
   * the replicas' saved-reply table per client.
   *
   * @param maxInFlight at least 1
   * @return this builder
   */
  public B maxInFlight(int maxInFlight) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be at least 1: " + maxInFlight);
    }
    this.maxInFlight = maxInFlight;
    return self();
  }

  /**
   * The largest frame this client sends or accepts. A request above it fails at once with
   * {@link TooLargeException} instead of making the server close the connection; a response above
   * it closes the connection.
   *
   * @param maxFrameBytes at least 1024
   * @return this builder
   */
  public B maxFrameBytes(int maxFrameBytes) {
    if (maxFrameBytes < 1024) {
      throw new IllegalArgumentException("maxFrameBytes must be at least 1024: " + maxFrameBytes);
    }
    this.maxFrameBytes = maxFrameBytes;
    return self();
  }

  /**
   * The consistency of reads that do not name one.
   *
   * @param readConsistency LINEARIZABLE (default) or SEQUENTIAL
   * @return this builder
   */
  public B readConsistency(ReadConsistency readConsistency) {
    if (readConsistency == null) {
      throw new IllegalArgumentException("readConsistency must not be null");
    }
    this.readConsistency = readConsistency;
    return self();
  }

  /** Sets the client instance id the public builder's clientId(long) was given; 0 is refused. */
  final B setClientId(long clientId) {
    if (clientId == 0) {
      throw new IllegalArgumentException("clientId must not be 0");
    }
    this.clientId = clientId;
    return self();
  }

  /** The client instance id set, its top bit set (see {@link ChoirClient#clientId()}); empty when none was. */
  final OptionalLong instanceId() {
    return clientId == null ? OptionalLong.empty() : OptionalLong.of(ClientIds.instanceId(clientId));
  }

  final boolean hasEndpoints() {
    return !endpoints.isEmpty();
  }

  /** The shared settings with the public builder's own, as the dispatcher takes them. */
  final ClientConfig config(long connectTimeoutMs, int eventLoopThreads, Random random) {
    return new ClientConfig(endpoints, requestTimeout.toMillis(), attemptTimeout.toMillis(), connectTimeoutMs,
        maxInFlight, maxFrameBytes, readConsistency, eventLoopThreads, random);
  }

  static Duration positive(Duration d, String name) {
    if (d == null || d.toMillis() < 1) {
      throw new IllegalArgumentException(name + " must be at least 1 ms: " + d);
    }
    return d;
  }
}
