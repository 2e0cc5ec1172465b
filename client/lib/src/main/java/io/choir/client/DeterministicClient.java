package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.client.spi.ClientTransport;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * DeterministicClient is the real client library (the same dispatcher, session, routing, retry and
 * timeout code as {@link ChoirClient}) on a clock and a network the caller supplies: a deterministic
 * simulator runs it on simulated time over a simulated connection, in one thread, and gets the same
 * run from the same seed. It has only the async API (a blocking call would wait for the simulator's
 * own thread); futures complete inline on the thread that drives the scheduler and the transport.
 *
 * <p>Give each client its own {@link ClientTransport} (closeAsync closes it), honouring that
 * interface's contract: a failed write means "not received", close() is abortive (nothing queued is
 * delivered later), and no listener call happens inside connect() or write(). The scheduler may be
 * shared. The client's exceptions carry the promises a history should record: ChoirTimeoutException
 * (and its subclass SessionExpiredException) means the outcome is unknown (info); UnavailableException,
 * BusyException, TooLargeException and InvalidRequestException mean not executed (a fail if the write
 * is seen to have happened); CasFailedException means executed with no effect.
 *
 * <p><b>For deterministic simulation and tests; not a stable API.</b> Applications use
 * {@link ChoirClient}.
 *
 * <pre>{@code
 * DeterministicClient client = DeterministicClient.builder()
 *     .endpoints(List.of("r1:7301", "r2:7301", "r3:7301"))
 *     .requestTimeout(Duration.ofSeconds(5))
 *     .attemptTimeout(Duration.ofSeconds(1))
 *     .maxInFlight(4)
 *     .clientId(0x1000 + i)
 *     .random(new Random(seed ^ i))          // retry jitter, replayable
 *     .scheduler(simClock)                   // implements ClientScheduler on simulated time
 *     .transport(simNetwork)                 // implements ClientTransport over the simulated network
 *     .build();
 * client.async().put("k", "v").whenComplete((version, error) -> history.record(...));
 * ...
 * client.closeAsync();                       // sends CloseSession, then closes its connections
 * }</pre>
 */
public final class DeterministicClient {
  private final Dispatcher dispatcher;
  private final AsyncChoirClient async;

  private DeterministicClient(Dispatcher dispatcher, ReadConsistency readConsistency) {
    this.dispatcher = dispatcher;
    this.async = new AsyncChoirClient(dispatcher, readConsistency);
  }

  /**
   * A builder; endpoints, scheduler, transport, clientId and random must be set.
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The async API: the same class and behaviour as {@link ChoirClient#async()}.
   *
   * @return the async client
   */
  public AsyncChoirClient async() {
    return async;
  }

  /**
   * This client instance's id, fixed for its lifetime: the builder's clientId with its top bit set
   * (see {@link ChoirClient#clientId()}). It is the client_id of its RegisterSession requests and of
   * its reads; its writes carry {@link #sessionId()}.
   *
   * @return the client instance id (negative as a signed long)
   */
  public long clientId() {
    return dispatcher.clientId();
  }

  /**
   * The id of this client's current session, as the replicas assigned it (the op of its registration)
   * and as its writes carry it; each new session (after an expiry) has a new one.
   *
   * @return the session id, or 0 when the client has none
   */
  public long sessionId() {
    return dispatcher.sessionId();
  }

  /**
   * The highest op number any response has shown this client.
   *
   * @return the highest op seen
   */
  public long highestOpSeen() {
    return dispatcher.highestOpSeen();
  }

  /**
   * Whether this client currently believes it has a registered session (for simulator assertions).
   *
   * @return true between a successful RegisterSession and its expiry or close
   */
  public boolean hasSession() {
    return dispatcher.sessionState() == Session.State.REGISTERED;
  }

  /**
   * Closes the client as {@link ChoirClient#close()} does, without blocking: pending calls fail, a
   * CloseSession is sent when a session may be open (within min(1 s, request timeout) of the
   * scheduler's time), then every connection is closed and {@link ClientTransport#close()} is called.
   *
   * @return completes (never exceptionally) when all of that is done
   */
  public CompletableFuture<Void> closeAsync() {
    return dispatcher.closeAsync();
  }

  /** Builder configures a DeterministicClient; validation is as strict as ChoirClient.Builder's. */
  public static final class Builder {
    private final List<Endpoint> endpoints = new ArrayList<>();
    private Duration requestTimeout = ChoirClient.Builder.DEFAULT_REQUEST_TIMEOUT;
    private Duration attemptTimeout = ChoirClient.Builder.DEFAULT_ATTEMPT_TIMEOUT;
    private int maxInFlight = ChoirClient.Builder.DEFAULT_MAX_IN_FLIGHT;
    private int maxFrameBytes = ChoirClient.Builder.DEFAULT_MAX_FRAME_BYTES;
    private ReadConsistency readConsistency = ReadConsistency.LINEARIZABLE;
    private Long clientId;
    private Random random;
    private ClientScheduler scheduler;
    private ClientTransport transport;

    private Builder() {}

    /**
     * The replicas' client addresses, host:port, as the transport will be asked to connect to them and
     * as the replicas name each other in NOT_PRIMARY hints.
     *
     * @param endpoints at least one
     * @return this builder
     */
    public Builder endpoints(List<String> endpoints) {
      if (endpoints == null || endpoints.isEmpty()) {
        throw new IllegalArgumentException("at least one endpoint is required");
      }
      this.endpoints.clear();
      for (String e : endpoints) {
        Endpoint endpoint = Endpoint.parse(e);
        if (!this.endpoints.contains(endpoint)) {
          this.endpoints.add(endpoint);
        }
      }
      return this;
    }

    /**
     * The whole budget of one call, on the scheduler's clock.
     *
     * @param requestTimeout at least 1 ms
     * @return this builder
     */
    public Builder requestTimeout(Duration requestTimeout) {
      this.requestTimeout = positive(requestTimeout, "requestTimeout");
      return this;
    }

    /**
     * How long one attempt waits before moving on (see {@link ChoirClient.Builder#attemptTimeout}).
     *
     * @param attemptTimeout at least 1 ms
     * @return this builder
     */
    public Builder attemptTimeout(Duration attemptTimeout) {
      this.attemptTimeout = positive(attemptTimeout, "attemptTimeout");
      return this;
    }

    /**
     * The most requests outstanding at once (see {@link ChoirClient.Builder#maxInFlight}).
     *
     * @param maxInFlight at least 1
     * @return this builder
     */
    public Builder maxInFlight(int maxInFlight) {
      if (maxInFlight < 1) {
        throw new IllegalArgumentException("maxInFlight must be at least 1: " + maxInFlight);
      }
      this.maxInFlight = maxInFlight;
      return this;
    }

    /**
     * The largest request frame sent (see {@link ChoirClient.Builder#maxFrameBytes}).
     *
     * @param maxFrameBytes at least 1024
     * @return this builder
     */
    public Builder maxFrameBytes(int maxFrameBytes) {
      if (maxFrameBytes < 1024) {
        throw new IllegalArgumentException("maxFrameBytes must be at least 1024: " + maxFrameBytes);
      }
      this.maxFrameBytes = maxFrameBytes;
      return this;
    }

    /**
     * The consistency of reads that do not name one.
     *
     * @param readConsistency not null
     * @return this builder
     */
    public Builder readConsistency(ReadConsistency readConsistency) {
      if (readConsistency == null) {
        throw new IllegalArgumentException("readConsistency must not be null");
      }
      this.readConsistency = readConsistency;
      return this;
    }

    /**
     * The client instance's id: the client_id of its RegisterSession requests, by which the primary
     * recognises a registration's retries (the replicas assign the session's own id). It must be
     * distinct per simulated client in its low 63 bits: the client sets its top bit, so that it
     * never equals a session id (see {@link ChoirClient#clientId()}).
     *
     * @param clientId not 0
     * @return this builder
     */
    public Builder clientId(long clientId) {
      if (clientId == 0) {
        throw new IllegalArgumentException("clientId must not be 0");
      }
      this.clientId = clientId;
      return this;
    }

    /**
     * The source of retry jitter: seed it from the simulation's seed so runs replay.
     *
     * @param random not null
     * @return this builder
     */
    public Builder random(Random random) {
      if (random == null) {
        throw new IllegalArgumentException("random must not be null");
      }
      this.random = random;
      return this;
    }

    /**
     * The clock and timers.
     *
     * @param scheduler not null
     * @return this builder
     */
    public Builder scheduler(ClientScheduler scheduler) {
      if (scheduler == null) {
        throw new IllegalArgumentException("scheduler must not be null");
      }
      this.scheduler = scheduler;
      return this;
    }

    /**
     * The connections to the replicas: this client's own (closeAsync closes it).
     *
     * @param transport not null
     * @return this builder
     */
    public Builder transport(ClientTransport transport) {
      if (transport == null) {
        throw new IllegalArgumentException("transport must not be null");
      }
      this.transport = transport;
      return this;
    }

    /**
     * Creates the client; it connects lazily, on its first request.
     *
     * @return the client
     * @throws IllegalArgumentException when a required setting is missing
     */
    public DeterministicClient build() {
      if (endpoints.isEmpty() || scheduler == null || transport == null || clientId == null || random == null) {
        throw new IllegalArgumentException("endpoints, scheduler, transport, clientId and random are required");
      }
      Random jitter = random;
      ClientConfig config = new ClientConfig(endpoints, requestTimeout.toMillis(), attemptTimeout.toMillis(),
          0, maxInFlight, maxFrameBytes, readConsistency, 0, jitter);
      return new DeterministicClient(
          new Dispatcher(config, ChoirClient.Builder.instanceId(clientId), scheduler, transport), readConsistency);
    }

    private static Duration positive(Duration d, String name) {
      if (d == null || d.toMillis() < 1) {
        throw new IllegalArgumentException(name + " must be at least 1 ms: " + d);
      }
      return d;
    }
  }
}
