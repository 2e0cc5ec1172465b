package io.choir.client;

import io.netty.handler.ssl.SslContext;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import javax.net.ssl.SSLContext;

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
  private final NettyIo io;
  private final Dispatcher dispatcher;
  private final AsyncChoirClient async;
  private final long requestTimeoutMs;

  private ChoirClient(ClientConfig config, long clientId, ClientSecurity security) {
    this.io = new NettyIo(config, security);
    this.dispatcher = new Dispatcher(config, clientId, io, io);
    this.async = new AsyncChoirClient(dispatcher, config.readConsistency());
    this.requestTimeoutMs = config.requestTimeoutMs();
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
   * Closes the client: pending calls fail (with UnavailableException("client closed") when they cannot
   * have executed, with ChoirTimeoutException when they may have), then, if this client opened a
   * session on the replicas (it does before its first write), a CloseSession ends it (best effort,
   * within {@code min(1 s, request timeout)}), then the connections close and the I/O threads stop
   * (within about a second). Idempotent; later calls fail with UnavailableException.
   */
  @Override
  public void close() {
    java.util.concurrent.CompletableFuture<Void> done = dispatcher.closeAsync();
    if (io.inAnyEventLoop()) {
      return; // called from a callback: waiting here would wait for this very thread
    }
    try {
      done.get(Dispatcher.CLOSE_SESSION_BUDGET_MS + Futures.SAFETY_MARGIN_MS, java.util.concurrent.TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      // closeAsync never fails; a lost completion must not keep the caller from closing
      io.close();
    }
    io.awaitTermination(2_000);
  }

  private <T> T await(java.util.concurrent.CompletableFuture<T> f) {
    if (!f.isDone() && io.inAnyEventLoop()) {
      // The answer would be read by this very thread: waiting here would always end in a timeout.
      throw new IllegalStateException("a blocking ChoirClient call was made on a Choir I/O thread (inside a"
          + " callback of an async call); use async() there instead");
    }
    return Futures.await(f, requestTimeoutMs);
  }

  /**
   * Builder configures a {@link ChoirClient}. Every setting has a default except the endpoints; each
   * bound is a named setting so an operator can see and tune it.
   */
  public static final class Builder extends ClientBuilder<Builder> {
    /** Default for {@link #requestTimeout}: long enough to ride out a view change. */
    public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(5);
    /**
     * Default for {@link #attemptTimeout}: twice the replicas' default election timeout (500 ms). A
     * primary that has not answered for that long is paused or cut off, and its backups have started
     * electing a new one by then, so the client tries them rather than keep waiting.
     */
    public static final Duration DEFAULT_ATTEMPT_TIMEOUT = Duration.ofSeconds(1);
    /** Default for {@link #connectTimeout}: a replica on the same network answers a SYN much faster. */
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(1);
    /** Default for {@link #maxInFlight}. */
    public static final int DEFAULT_MAX_IN_FLIGHT = 1024;
    /** Default for {@link #maxFrameBytes}: a 16 MiB value plus room for the key and the envelope. */
    public static final int DEFAULT_MAX_FRAME_BYTES = (16 << 20) + (64 << 10);

    private Duration connectTimeout = DEFAULT_CONNECT_TIMEOUT;
    private int eventLoopThreads = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
    private Random random;
    private Path trustCertificates;
    private Path clientCertificate;
    private Path clientKey;
    private SslContext sslContext;
    private String token;

    private Builder() {}

    /**
     * Connects with TLS, trusting the replicas' certificates only when caFile's CA signed them. The
     * certificate must also name the host of the endpoint connected to (a DNS name or IP address in its
     * subject alternative names), as HTTPS checks it.
     *
     * @param caFile PEM file of the CA certificate(s)
     * @return this builder
     */
    public Builder trustCertificates(Path caFile) {
      this.trustCertificates = java.util.Objects.requireNonNull(caFile, "caFile");
      return this;
    }

    /**
     * Connects with TLS and presents this client certificate (mutual TLS): the replicas' access file
     * may name its subject (CN or whole DN) as an identity. Without {@link #trustCertificates}, the
     * replicas' certificates must be signed by a CA of the JDK's default trust store.
     *
     * @param certFile PEM certificate (chain) of this client
     * @param keyFile its PEM private key (PKCS#8, unencrypted)
     * @return this builder
     */
    public Builder clientCertificate(Path certFile, Path keyFile) {
      this.clientCertificate = java.util.Objects.requireNonNull(certFile, "certFile");
      this.clientKey = java.util.Objects.requireNonNull(keyFile, "keyFile");
      return this;
    }

    /**
     * Connects with TLS as this Netty client context says (its trust, its key, its engine), instead of
     * {@link #trustCertificates} and {@link #clientCertificate}. Host names are verified regardless.
     *
     * @param sslContext a client context
     * @return this builder
     */
    public Builder sslContext(SslContext sslContext) {
      if (sslContext == null || sslContext.isServer()) {
        throw new IllegalArgumentException("sslContext must be a client context");
      }
      this.sslContext = sslContext;
      return this;
    }

    /**
     * Connects with TLS as this JDK context says (its trust and key managers), instead of
     * {@link #trustCertificates} and {@link #clientCertificate}. Only TLS 1.3 and 1.2 are offered and
     * host names are verified regardless.
     *
     * @param sslContext an initialised JDK SSLContext
     * @return this builder
     */
    public Builder sslContext(SSLContext sslContext) {
      return sslContext(ClientSecurity.fromJdk(java.util.Objects.requireNonNull(sslContext, "sslContext")));
    }

    /**
     * A token the replicas' access file knows (by its SHA-256): every connection presents it first (a
     * reconnect too), and its requests are then checked against the token's identity. A token is a
     * secret: use it with TLS, since without TLS anyone on the network path can read it. A token the
     * replicas do not know fails calls with {@link PermissionDeniedException}.
     *
     * @param token the token (not empty)
     * @return this builder
     */
    public Builder token(String token) {
      if (token == null || token.isEmpty()) {
        throw new IllegalArgumentException("token must not be empty");
      }
      this.token = token;
      return this;
    }

    @Override
    Builder self() {
      return this;
    }

    /**
     * Varargs form of {@link #endpoints(List)}.
     *
     * @param endpoints host:port strings, at least one
     * @return this builder
     */
    public Builder endpoints(String... endpoints) {
      return endpoints(endpoints == null ? List.of() : Arrays.asList(endpoints));
    }

    /**
     * How long one TCP connect may take before the endpoint counts as down for this attempt.
     *
     * @param connectTimeout positive, at least 1 ms
     * @return this builder
     */
    public Builder connectTimeout(Duration connectTimeout) {
      this.connectTimeout = positive(connectTimeout, "connectTimeout");
      return this;
    }

    /**
     * The number of Netty I/O threads (default: the number of cores, at most 4). Futures complete on
     * these threads.
     *
     * @param eventLoopThreads at least 1
     * @return this builder
     */
    public Builder eventLoopThreads(int eventLoopThreads) {
      if (eventLoopThreads < 1) {
        throw new IllegalArgumentException("eventLoopThreads must be at least 1: " + eventLoopThreads);
      }
      this.eventLoopThreads = eventLoopThreads;
      return this;
    }

    /** Test hook: the source of retry jitter, seeded so a test replays the same pauses. */
    Builder random(Random random) {
      this.random = random;
      return this;
    }

    /** Test hook: a fixed client instance id (its top bit is set, see {@link ChoirClient#clientId()}). */
    Builder clientId(long clientId) {
      return setClientId(clientId);
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
      if (sslContext != null && (trustCertificates != null || clientCertificate != null)) {
        throw new IllegalArgumentException("set either sslContext or trustCertificates/clientCertificate, not both");
      }
      SslContext tls = sslContext;
      if (tls == null && (trustCertificates != null || clientCertificate != null)) {
        tls = ClientSecurity.fromFiles(trustCertificates, clientCertificate, clientKey);
      }
      if (token != null && tls == null) {
        org.slf4j.LoggerFactory.getLogger(ChoirClient.class).warn("a token is set without TLS: anyone on the"
            + " network path can read it (set trustCertificates or sslContext)");
      }
      ClientConfig config = config(connectTimeout.toMillis(), eventLoopThreads, random != null ? random : new Random());
      Long instanceId = instanceIdOrNull();
      return new ChoirClient(config, instanceId != null ? instanceId : newClientId(), new ClientSecurity(tls, token));
    }

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
}
