package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.client.spi.ClientTransport;
import java.util.OptionalLong;
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
 * is seen to have happened); CasFailedException means executed with no effect. The membership calls
 * ({@code async().membership()}) run here too, MemberChangeRefusedException meaning not executed; the
 * catch-up wait of {@code addMember} polls on the given scheduler, so it takes simulated time only.
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

  /**
   * Builder configures a DeterministicClient: the settings and validation of {@link ChoirClient.Builder}
   * (endpoints, timeouts, in-flight and frame bounds, read consistency), plus the clock, the network, the
   * client id and the jitter source, which it requires.
   */
  public static final class Builder extends ClientBuilder<Builder> {
    private Random random;
    private ClientScheduler scheduler;
    private ClientTransport transport;

    private Builder() {}

    @Override
    Builder self() {
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
      return setClientId(clientId);
    }

    /**
     * The source of retry jitter: seed it from the simulation's seed so runs replay.
     *
     * @param random not null
     * @return this builder
     */
    public Builder random(Random random) {
      this.random = required(random, "random");
      return this;
    }

    /**
     * The clock and timers.
     *
     * @param scheduler not null
     * @return this builder
     */
    public Builder scheduler(ClientScheduler scheduler) {
      this.scheduler = required(scheduler, "scheduler");
      return this;
    }

    /**
     * The connections to the replicas: this client's own (closeAsync closes it).
     *
     * @param transport not null
     * @return this builder
     */
    public Builder transport(ClientTransport transport) {
      this.transport = required(transport, "transport");
      return this;
    }

    /**
     * Creates the client; it connects lazily, on its first request.
     *
     * @return the client
     * @throws IllegalArgumentException when a required setting is missing
     */
    public DeterministicClient build() {
      OptionalLong instanceId = instanceId();
      if (!hasEndpoints() || scheduler == null || transport == null || instanceId.isEmpty() || random == null) {
        throw new IllegalArgumentException("endpoints, scheduler, transport, clientId and random are required");
      }
      // Connect timeout and I/O threads are NettyIo's settings; the caller's transport has its own.
      ClientConfig config = config(0, 0, random);
      return new DeterministicClient(new Dispatcher(config, instanceId.getAsLong(), scheduler, transport), config.readConsistency());
    }

    private static <T> T required(T value, String name) {
      if (value == null) {
        throw new IllegalArgumentException(name + " must not be null");
      }
      return value;
    }
  }
}
