package io.choir.client;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Flow;

/**
 * ChoirClient is the entry point to a Choir cluster: a thread-safe, blocking key-value API (with an
 * async twin from {@link #async()}) that hides which replica is primary, failover and retries. Create
 * one per application and share it: it keeps one multiplexed TCP connection per replica.
 *
 * <p>Every call has one budget, the request timeout, covering the wait for an in-flight slot, connects,
 * redirects and retries. Retries reuse the request id, so a write is executed at most once however
 * often it is resent. A replica that does not answer one attempt within the attempt timeout (a paused
 * or cut-off primary) is left for the next one, with the same id. When the budget runs out the call
 * throws {@link ChoirTimeoutException} if the request may have reached a replica (the outcome is
 * unknown), {@link BusyException} if the replicas kept answering BUSY, and {@link UnavailableException}
 * if it never got through; the last two mean it was not executed. Not-found is a result (an empty
 * Optional, false), never an exception.
 *
 * <p>Writes run in a session on the replicas, which keeps the saved replies that make retries
 * exactly-once: the client opens it before its first write (reads need none) and ends it on
 * {@link #close()}. The replicas assign each session a new id, never reused. A session the replicas
 * let expire (no write for their session_timeout_ms) is replaced by a new one at the next write,
 * transparently; only a write in flight whose earlier attempt may have executed fails then, with
 * {@link SessionExpiredException} (outcome unknown).
 * When the replicas' session table is full, writes fail with {@link BusyException}.
 *
 * <pre>{@code
 * try (ChoirClient client = ChoirClient.builder().endpoints("10.0.0.1:7000", "10.0.0.2:7000").build()) {
 *   long version = client.put("greeting", "hello");
 *   String greeting = client.get("greeting").map(VersionedValue::valueAsString).orElse("none");
 * }
 * }</pre>
 */
public final class ChoirClient implements AutoCloseable {
  private final Dispatcher dispatcher;
  private final AsyncChoirClient async;
  private final BlockingWaits waits;
  private final MembershipClient membership;
  private final LeaseClient leases;
  private final ClientConfig config;
  private final NettyIo io;
  private final Set<Watch> watches = ConcurrentHashMap.newKeySet();

  private ChoirClient(ClientConfig config, long clientId, ClientSecurity security) {
    NettyIo io = new NettyIo(config, security);
    this.config = config;
    this.io = io;
    this.dispatcher = new Dispatcher(config, clientId, io, io);
    this.async = new AsyncChoirClient(dispatcher, config.readConsistency());
    this.waits = new BlockingWaits(io, config.requestTimeoutMs());
    this.membership = new MembershipClient(async.membership(), waits, config.requestTimeoutMs());
    this.leases = new LeaseClient(async.leases(), waits);
  }

  /**
   * A builder with the defaults: request timeout 5 s, attempt timeout 1 s, connect timeout 1 s, 1024
   * requests in flight, frames up to 16 MiB + 64 KiB, linearizable reads.
   *
   * @return a new builder; at least one endpoint must be set before {@link Builder#build()}
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The non-blocking API over the same connections, ids and limits.
   *
   * @return the async client; closed together with this client
   */
  public AsyncChoirClient async() {
    return async;
  }

  /**
   * This client instance's random identity, fixed for its lifetime: the client_id of its
   * RegisterSession requests (the replicas use it to recognise a registration's retries) and of its
   * reads. Its writes carry the id of its current session instead, {@link #sessionId()}, which the
   * replicas assign. The top bit is always set, so it never equals a session id (an op number).
   *
   * @return the client instance id, never 0 (negative as a signed long)
   */
  public long clientId() {
    return dispatcher.clientId();
  }

  /**
   * The id of this client's current session on the replicas, as its writes carry it in client_id;
   * useful to find them in server logs. The replicas assign it (the op number of the session's
   * registration: unique, never reused), so each new session has a new id: after an expiry, the next
   * write opens another session, and no delayed copy of a request of the old one can ever execute.
   *
   * @return the session id, or 0 when this client has no session (before its first write, after
   *     an expiry until the next write, after close)
   */
  public long sessionId() {
    return dispatcher.sessionId();
  }

  /**
   * The highest op number any response has shown this client; sequential reads ask for at least this.
   *
   * @return the highest op seen, 0 before the first response
   */
  public long highestOpSeen() {
    return dispatcher.highestOpSeen();
  }

  /**
   * Reads key with the client's default read consistency.
   *
   * <p>Like every blocking method, it must not be called from a callback of an async call (those run
   * on the client's I/O threads, which would have to read the answer): it throws
   * IllegalStateException there.
   *
   * @param key the key, not empty
   * @return the value and its version, or empty when the key is absent
   */
  public Optional<VersionedValue> get(byte[] key) {
    return await(async.get(key));
  }

  /**
   * Reads key (UTF-8) with the client's default read consistency.
   *
   * @param key the key, not empty
   * @return the value and its version, or empty when the key is absent
   */
  public Optional<VersionedValue> get(String key) {
    return await(async.get(key));
  }

  /**
   * Reads key with the given consistency.
   *
   * @param key the key, not empty
   * @param consistency how the read is served
   * @return the value and its version, or empty when the key is absent
   */
  public Optional<VersionedValue> get(byte[] key, ReadConsistency consistency) {
    return await(async.get(key, consistency));
  }

  /**
   * Reads key (UTF-8) with the given consistency.
   *
   * @param key the key, not empty
   * @param consistency how the read is served
   * @return the value and its version, or empty when the key is absent
   */
  public Optional<VersionedValue> get(String key, ReadConsistency consistency) {
    return await(async.get(key, consistency));
  }

  /**
   * Writes value to key.
   *
   * @param key the key, not empty
   * @param value the value, not null (may be empty)
   * @return the op number of the write, which is the key's new version
   */
  public long put(byte[] key, byte[] value) {
    return await(async.put(key, value));
  }

  /**
   * Writes value to key, both encoded as UTF-8.
   *
   * @param key the key, not empty
   * @param value the value, not null (may be empty)
   * @return the op number of the write, which is the key's new version
   */
  public long put(String key, String value) {
    return await(async.put(key, value));
  }

  /**
   * Deletes key.
   *
   * @param key the key, not empty
   * @return whether the key existed
   */
  public boolean delete(byte[] key) {
    return await(async.delete(key));
  }

  /**
   * Deletes key (UTF-8).
   *
   * @param key the key, not empty
   * @return whether the key existed
   */
  public boolean delete(String key) {
    return await(async.delete(key));
  }

  /**
   * Writes newValue to key only when its current value equals expectedValue.
   *
   * @param key the key, not empty
   * @param expectedValue the value the key must hold, not null (use putIfAbsent to expect absence)
   * @param newValue the value to write, not null
   * @return the op number of the write
   * @throws CasFailedException when the key holds another value or is absent
   */
  public long compareAndSet(byte[] key, byte[] expectedValue, byte[] newValue) {
    return await(async.compareAndSet(key, expectedValue, newValue));
  }

  /**
   * UTF-8 form of {@link #compareAndSet(byte[], byte[], byte[])}.
   *
   * @param key the key, not empty
   * @param expectedValue the value the key must hold, not null
   * @param newValue the value to write, not null
   * @return the op number of the write
   * @throws CasFailedException when the key holds another value or is absent
   */
  public long compareAndSet(String key, String expectedValue, String newValue) {
    return await(async.compareAndSet(key, expectedValue, newValue));
  }

  /**
   * Writes newValue to key only when its current version equals expectedVersion (optimistic
   * concurrency: read with get, compute, write back with the version read).
   *
   * @param key the key, not empty
   * @param expectedVersion the version the key must have, positive
   * @param newValue the value to write, not null
   * @return the op number of the write
   * @throws CasFailedException when the key changed since or is absent
   */
  public long compareAndSetVersion(byte[] key, long expectedVersion, byte[] newValue) {
    return await(async.compareAndSetVersion(key, expectedVersion, newValue));
  }

  /**
   * UTF-8 form of {@link #compareAndSetVersion(byte[], long, byte[])}.
   *
   * @param key the key, not empty
   * @param expectedVersion the version the key must have, positive
   * @param newValue the value to write, not null
   * @return the op number of the write
   * @throws CasFailedException when the key changed since or is absent
   */
  public long compareAndSetVersion(String key, long expectedVersion, String newValue) {
    return await(async.compareAndSetVersion(key, expectedVersion, newValue));
  }

  /**
   * Writes value to key only when the key is absent.
   *
   * @param key the key, not empty
   * @param value the value to write, not null
   * @return the op number of the write
   * @throws CasFailedException when the key exists (carrying its value and version)
   */
  public long putIfAbsent(byte[] key, byte[] value) {
    return await(async.putIfAbsent(key, value));
  }

  /**
   * UTF-8 form of {@link #putIfAbsent(byte[], byte[])}.
   *
   * @param key the key, not empty
   * @param value the value to write, not null
   * @return the op number of the write
   * @throws CasFailedException when the key exists (carrying its value and version)
   */
  public long putIfAbsent(String key, String value) {
    return await(async.putIfAbsent(key, value));
  }

  /**
   * Reads the pairs with keys in [startKey, endKey) in byte order.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @return the pairs and whether more remain
   */
  public ScanResult scan(byte[] startKey, byte[] endKey, int limit) {
    return await(async.scan(startKey, endKey, limit));
  }

  /**
   * Reads the pairs with keys in [startKey, endKey) with the given consistency.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @param consistency how the read is served
   * @return the pairs and whether more remain
   */
  public ScanResult scan(byte[] startKey, byte[] endKey, int limit, ReadConsistency consistency) {
    return await(async.scan(startKey, endKey, limit, consistency));
  }

  /**
   * UTF-8 form of {@link #scan(byte[], byte[], int)}.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @return the pairs and whether more remain
   */
  public ScanResult scan(String startKey, String endKey, int limit) {
    return await(async.scan(startKey, endKey, limit));
  }

  /**
   * UTF-8 form of {@link #scan(byte[], byte[], int, ReadConsistency)}.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @param consistency how the read is served
   * @return the pairs and whether more remain
   */
  public ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
    return await(async.scan(startKey, endKey, limit, consistency));
  }

  /**
   * Applies the batch's writes as one log entry, all or nothing.
   *
   * @param batch the writes
   * @return the op number of the batch, the new version of every key it wrote
   * @throws CasFailedException when a compare-and-set in the batch failed (see failedIndex); nothing
   *     was written
   */
  public long batch(Batch batch) {
    return await(async.batch(batch));
  }

  /**
   * Lists and changes the members of the cluster: {@code membership().members()}, {@code addMember},
   * {@code removeMember}, {@code replaceMember}... (DESIGN.md "Membership").
   *
   * @return the membership calls, on this client's connections
   */
  public MembershipClient membership() {
    return membership;
  }

  /**
   * Grants, keeps alive, revokes and lists leases, and writes keys attached to them (docs/lease.md):
   * {@code try (Lease lease = client.leases().grant(Duration.ofSeconds(10))) { ... }}.
   *
   * @return the lease calls, on this client's connections
   */
  public LeaseClient leases() {
    return leases;
  }

  /**
   * Asks every configured endpoint for its status, directly and in parallel. Does not throw for a
   * replica that does not answer: its entry carries the error.
   *
   * @return one entry per configured endpoint, in configuration order
   */
  public List<ReplicaStatusResult> status() {
    return await(async.status());
  }

  /**
   * Asks one endpoint for its status.
   *
   * @param endpoint host:port of the replica (need not be configured)
   * @return the replica's status, or the error that kept it from answering
   */
  public ReplicaStatusResult status(String endpoint) {
    return await(async.status(endpoint));
  }

  /**
   * Watches a key or a prefix (docs/watch.md): listener gets every change from options' start
   * revision on (0: from now), in revision order, each once, on a thread of the watch's own. The watch
   * has a connection of its own to any replica (watches are sequential: a replica serves them from its
   * own applied state) and survives lost connections and failovers by resuming, on any replica, from
   * the revision after the last one it delivered. It ends by itself only for good reasons, told to
   * {@link WatchListener#onError} (a start older than the replicas keep, no permission, a bound).
   *
   * @param options what to watch, from when
   * @param listener where the events go
   * @return the running watch; close it to stop (closing the client closes it too)
   */
  public Watch watch(WatchOptions options, WatchListener listener) {
    if (dispatcher.isClosed()) {
      throw new UnavailableException("client closed");
    }
    ClientWatch[] self = new ClientWatch[1];
    ClientWatch w = new ClientWatch(io, config.endpoints(), options, listener, config.connectTimeoutMs(),
        config.attemptTimeoutMs(), new Random(config.random().nextLong()), () -> watches.remove(self[0]));
    self[0] = w;
    watches.add(w);
    w.start();
    return w;
  }

  /**
   * A watch as a {@link Flow.Publisher}: each subscriber gets a watch of its own ({@link #watch}), which
   * honours its demand and ends with onError for the reasons {@link WatchListener#onError} names.
   *
   * @param options what to watch, from when
   * @return the publisher
   */
  public Flow.Publisher<WatchEvent> watchPublisher(WatchOptions options) {
    return new WatchPublisher(this::watch, options);
  }

  /**
   * Closes the client: its watches stop, pending calls fail (with UnavailableException("client closed")
   * when they cannot
   * have executed, with ChoirTimeoutException when they may have), then, if this client opened a
   * session on the replicas (it does before its first write), a CloseSession ends it (best effort,
   * within {@code min(1 s, request timeout)}), then the connections close and the I/O threads stop
   * (within about a second). Idempotent; later calls fail with UnavailableException.
   */
  @Override
  public void close() {
    for (Watch w : List.copyOf(watches)) {
      w.close();
    }
    waits.awaitClosed(dispatcher.closeAsync());
  }

  private <T> T await(CompletableFuture<T> f) {
    return waits.await(f);
  }

  /**
   * Builder configures a {@link ChoirClient}. Every setting has a default except the endpoints; each
   * bound is a named setting so an operator can see and tune it. The settings both clients share, and
   * their defaults (DEFAULT_REQUEST_TIMEOUT ...), are {@code ClientBuilder}'s; those of a client on real
   * sockets (connects, I/O threads, TLS, token) are {@code NetworkClientBuilder}'s.
   */
  public static final class Builder extends NetworkClientBuilder {
    private Builder() {}

    @Override
    Builder self() {
      return this;
    }

    /**
     * Creates the client. It connects lazily, so this succeeds even when no replica is up yet.
     *
     * @return a new client; close it when done
     * @throws IllegalArgumentException when no endpoint was set, or a TLS file cannot be read or used
     */
    public ChoirClient build() {
      if (!hasEndpoints()) {
        throw new IllegalArgumentException("at least one endpoint is required");
      }
      ClientSecurity security = security();
      ClientConfig config = networkConfig();
      return new ChoirClient(config, instanceId().orElseGet(ClientIds::newClientId), security);
    }
  }
}
