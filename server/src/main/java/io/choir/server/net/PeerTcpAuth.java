package io.choir.server.net;

import io.choir.server.security.ClusterKeys;
import io.choir.server.security.PeerHandshake;
import io.choir.server.security.SealedRecords;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelPipeline;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.security.SecureRandom;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerTcpAuth decides who may use a replica's peer TCP port (state transfers and peer streams) and
 * sets up each connection's pipeline for it, on both ends:
 *
 * <ul>
 *   <li>With a cluster key: every connection starts with the {@link PeerHandshake} (both sides prove
 *       they hold the key; the connector's id must be another member or a former one (PeerDirectory),
 *       the target this replica) and
 *       then carries only {@link io.choir.server.security.SealedRecords} (AES-GCM, per-connection
 *       and per-direction keys). The handlers above see the channel active only once it is proven;
 *       a stranger, with no key or a wrong one, is closed having received at most a nonce and a MAC.
 *       There is no fallback: a connection that does not start with a handshake is refused.
 *   <li>Without a key (allowed on loopback only, or with accept_unauthenticated_peers): connections
 *       are accepted only from the source addresses of the member (and former member) replicas' peer
 *       hosts, in the clear.
 *       That keeps other hosts out, but not other users of a member's host (on loopback: any local
 *       user), and not a host that can spoof a member's address: use a key for that.
 * </ul>
 *
 * <p>Bounds: at most maxPendingHandshakes connections of one listener may be mid-handshake at a time
 * (more are closed at once, counted too_many_handshakes), at most half of them from one source
 * address (too_many_from_address), and each must finish within
 * handshakeTimeoutMs (else closed, timeout); an acceptor reads at most {@link
 * PeerHandshake#MAX_HANDSHAKE_BYTES} from a connection that has not proven itself.
 *
 * <p>Counters (status: peer_tcp_...): {@code peer_tcp.refused.<reason>} for connections this replica
 * accepted and then closed (bad_hello, foreign_cluster, unknown_member, wrong_target, unknown_key,
 * bad_proof, timeout, closed_in_handshake, too_many_handshakes, too_many_from_address, unknown_address, bad_frame,
 * sender_mismatch); {@code peer_tcp.connect_failed.<reason>} for connections this replica opened
 * whose other end failed to prove itself or refused (bad_proof, timeout, refused, bad_frame);
 * {@code peer_tcp.accepted} and {@code peer_tcp.connected} for proven connections. A refusal is
 * logged at most once per {@link #LOG_INTERVAL_NS} per reason.
 *
 * <p>Threads: any; each connection's handlers run on its channel's loop.
 */
public final class PeerTcpAuth {
  private static final Logger log = LoggerFactory.getLogger(PeerTcpAuth.class);

  /** Default time from connect to a proven handshake (a loopback handshake takes well under 10 ms). */
  public static final long DEFAULT_HANDSHAKE_TIMEOUT_MS = 2_000;
  /** Default bound on the connections of one listener still in their handshake. */
  public static final int DEFAULT_MAX_PENDING_HANDSHAKES = 16;
  /** Refusals of one reason are logged at most once per this interval (they are counted always). */
  static final long LOG_INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);

  /**
   * Small records sealed and opened once per process at the first keyed PeerTcpAuth, in a background
   * thread, so a state transfer runs at AES-GCM's intrinsic speed from its first byte
   * ({@link SealedRecords#warmUp}).
   */
  static final int WARM_UP_RECORDS = 20_000;
  private static final AtomicBoolean WARMED_UP =
      new AtomicBoolean();

  /** The peer id a connection proved (set once its handshake is done; absent without a key). */
  static final AttributeKey<Integer> PEER_ID = AttributeKey.valueOf("choir.peer_tcp.peer_id");
  /** Completes when a connection is ready for the handlers above: proven, or admitted without a key. */
  static final AttributeKey<Promise<Integer>> READY = AttributeKey.valueOf("choir.peer_tcp.ready");

  /** Replaced when the directory's members change. */
  private volatile PeerHandshake.Members members;
  /** Where the members are now: source addresses are checked against what their names resolve to. */
  private final PeerDirectory directory;
  /** False: any source address (only {@link #unchecked}). */
  private final boolean checkAddresses;
  private final ClusterKeys keys;
  private final long handshakeTimeoutMs;
  private final int maxPendingHandshakes;
  private final MeterRegistry metrics;
  private final SecureRandom random = new SecureRandom();
  private final AtomicInteger pending = new AtomicInteger();
  private final Map<InetAddress, AtomicInteger> pendingByAddress = new ConcurrentHashMap<>();
  private final Map<String, Counter> counters = new ConcurrentHashMap<>();
  private final Map<String, AtomicLong> lastLogNs = new ConcurrentHashMap<>();

  /**
   * PeerTcpAuth for replica selfId of a cluster.
   *
   * @param members every replica's peer address by id (selfId included)
   * @param keys the cluster keys, or null for the address check only
   * @param handshakeTimeoutMs time from connect to a proven handshake
   * @param maxPendingHandshakes connections of one listener in their handshake at a time
   * @param metrics where the counters go
   */
  public PeerTcpAuth(int selfId, long clusterIdHash, Map<Integer, InetSocketAddress> members, ClusterKeys keys,
      long handshakeTimeoutMs, int maxPendingHandshakes, MeterRegistry metrics) {
    this(clusterIdHash, new PeerDirectory(selfId, members, PeerDirectory.Resolver.SYSTEM, System::nanoTime,
        TimeUnit.SECONDS.toNanos(1), metrics), keys, handshakeTimeoutMs, maxPendingHandshakes, metrics);
  }

  /**
   * PeerTcpAuth for replica directory.selfId() of a cluster whose members (and their addresses, which
   * may change) directory knows; otherwise as above.
   */
  public PeerTcpAuth(long clusterIdHash, PeerDirectory directory, ClusterKeys keys, long handshakeTimeoutMs,
      int maxPendingHandshakes, MeterRegistry metrics) {
    this(clusterIdHash, directory, keys, handshakeTimeoutMs, maxPendingHandshakes, metrics, true);
  }

  private PeerTcpAuth(long clusterIdHash, PeerDirectory directory, ClusterKeys keys, long handshakeTimeoutMs,
      int maxPendingHandshakes, MeterRegistry metrics, boolean checkAddresses) {
    if (handshakeTimeoutMs < 1 || maxPendingHandshakes < 1) {
      throw new IllegalArgumentException("handshake timeout and bound must be positive: " + handshakeTimeoutMs
          + ", " + maxPendingHandshakes);
    }
    int selfId = directory.selfId();
    this.directory = directory;
    this.members = new PeerHandshake.Members(selfId, clusterIdHash, directory.acceptedIds());
    // A former member may connect (to fetch the state transfer that tells it it was removed); the
    // peer streams accept members only (PeerStreamInbound).
    directory.onMembersChanged(ids -> members = new PeerHandshake.Members(selfId, clusterIdHash,
        directory.acceptedIds()));
    this.checkAddresses = checkAddresses;
    this.keys = keys;
    if (keys != null && WARMED_UP.compareAndSet(false, true)) {
      Thread t = new Thread(() -> SealedRecords.warmUp(WARM_UP_RECORDS), "choir-aes-gcm-warm-up");
      t.setDaemon(true);
      t.setPriority(Thread.MIN_PRIORITY);
      t.start();
    }
    this.handshakeTimeoutMs = handshakeTimeoutMs;
    this.maxPendingHandshakes = maxPendingHandshakes;
    this.metrics = metrics;
  }

  /**
   * No key and no address check: anyone may connect. Only for tests of the layers above (they build a
   * listener or client alone); a replica always passes its own PeerTcpAuth.
   */
  public static PeerTcpAuth unchecked(int selfId, long clusterIdHash, Set<Integer> memberIds) {
    Map<Integer, InetSocketAddress> none = new TreeMap<>();
    memberIds.forEach(id -> none.put(id, new InetSocketAddress(InetAddress.getLoopbackAddress(), 1)));
    MeterRegistry metrics = new SimpleMeterRegistry();
    PeerDirectory nowhere = new PeerDirectory(selfId, none, host -> {
      throw new UnknownHostException(host);
    }, System::nanoTime, TimeUnit.SECONDS.toNanos(1), metrics);
    return new PeerTcpAuth(clusterIdHash, nowhere, null, DEFAULT_HANDSHAKE_TIMEOUT_MS,
        DEFAULT_MAX_PENDING_HANDSHAKES, metrics, false);
  }

  /** True when connections are proven with a key. */
  public boolean authenticated() {
    return keys != null;
  }

  public int selfId() {
    return members.selfId();
  }

  long handshakeTimeoutMs() {
    return handshakeTimeoutMs;
  }

  /** The directory of the members' peer addresses. */
  public PeerDirectory directory() {
    return directory;
  }

  /** The member id whose peer address is address now, or -1. */
  int idOf(InetSocketAddress address) {
    return directory.idOf(address);
  }

  /** The local address a connector binds, so that an address-checking acceptor sees a member host. */
  InetSocketAddress connectorLocalAddress() {
    InetAddress selfHost = directory.selfHost();
    return keys == null && selfHost != null ? new InetSocketAddress(selfHost, 0) : null;
  }

  /**
   * Puts the acceptor's handlers first in a new connection's pipeline (call in initChannel, before
   * the frame decoder): the handshake and record handlers with a key, else the address check.
   */
  void addAcceptor(ChannelPipeline p) {
    Promise<Integer> ready = p.channel().eventLoop().newPromise();
    p.channel().attr(READY).set(ready);
    if (keys == null) {
      p.addFirst("peer-tcp-address", new PeerTcpHandshakeHandler.AddressCheck(this, ready));
      return;
    }
    SealedRecordCodec codec = new SealedRecordCodec(this, false);
    p.addFirst("peer-tcp-seal", codec.sealer());
    p.addFirst("peer-tcp-open", codec.opener());
    p.addFirst("peer-tcp-handshake", new PeerTcpHandshakeHandler(this, false, -1, codec, ready));
  }

  /** Puts the connector's handlers first in a new connection's pipeline to member toId. */
  void addConnector(ChannelPipeline p, int toId) {
    Promise<Integer> ready = p.channel().eventLoop().newPromise();
    p.channel().attr(READY).set(ready);
    if (keys == null) {
      ready.setSuccess(toId);
      return;
    }
    SealedRecordCodec codec = new SealedRecordCodec(this, true);
    p.addFirst("peer-tcp-seal", codec.sealer());
    p.addFirst("peer-tcp-open", codec.opener());
    p.addFirst("peer-tcp-handshake", new PeerTcpHandshakeHandler(this, true, toId, codec, ready));
  }

  /**
   * Completes with the other end's id once channel is ready for the handlers above (proven, or
   * admitted without a key), or fails when it was refused or timed out; the channel then closes.
   */
  static Future<Integer> ready(Channel channel) {
    Promise<Integer> p = channel.attr(READY).get();
    if (p == null) {
      return channel.eventLoop().newSucceededFuture(-1);
    }
    return p;
  }

  /** The peer id channel proved with the key, or null without a key. */
  static Integer provenPeer(Channel channel) {
    return channel.attr(PEER_ID).get();
  }

  PeerHandshake newAcceptorHandshake() {
    return PeerHandshake.accept(keys, members, nonce());
  }

  PeerHandshake newConnectorHandshake(int toId) {
    return PeerHandshake.connect(keys, members, toId, nonce());
  }

  private byte[] nonce() {
    byte[] n = new byte[PeerHandshake.NONCE_BYTES];
    random.nextBytes(n);
    return n;
  }

  /**
   * True when a connection from address may go on without a key: from the host another member's name
   * resolves to now (a changed address is admitted once the directory has resolved it again).
   */
  boolean admits(InetSocketAddress remote) {
    return !checkAddresses || (remote != null && directory.isPeerHost(remote.getAddress()));
  }

  /**
   * Takes a handshake slot for a connection from remote: null when taken, else the refusal's reason
   * (too_many_handshakes: maxPendingHandshakes are in use; too_many_from_address: remote's address
   * holds {@link #perAddressLimit} of them already, so one stranger host cannot take every slot and
   * shut the members out).
   */
  String beginHandshake(InetAddress remote) {
    if (pending.incrementAndGet() > maxPendingHandshakes) {
      pending.decrementAndGet();
      return "too_many_handshakes";
    }
    if (remote != null) {
      AtomicInteger n = pendingByAddress.computeIfAbsent(remote, a -> new AtomicInteger());
      if (n.incrementAndGet() > perAddressLimit()) {
        endHandshake(remote);
        return "too_many_from_address";
      }
    }
    return null;
  }

  void endHandshake(InetAddress remote) {
    pending.decrementAndGet();
    if (remote != null) {
      pendingByAddress.computeIfPresent(remote, (a, n) -> n.decrementAndGet() <= 0 ? null : n);
    }
  }

  /** Handshake slots one source address may hold: half of them (at least one). */
  int perAddressLimit() {
    return Math.max(1, maxPendingHandshakes / 2);
  }

  /** Connections in their handshake now (tests). */
  public int pendingHandshakes() {
    return pending.get();
  }

  /** Counts and (rate-limited) logs a connection this replica accepted and then refused. */
  void refused(String reason, Object remote) {
    count("peer_tcp.refused." + reason);
    logOnce("refused." + reason, remote, "peer TCP connection refused");
  }

  /** Counts and logs a connection this replica opened that its other end did not prove or refused. */
  void connectFailed(String reason, Object remote) {
    count("peer_tcp.connect_failed." + reason);
    logOnce("connect_failed." + reason, remote, "peer TCP connection failed its handshake");
  }

  void proven(boolean connector) {
    count(connector ? "peer_tcp.connected" : "peer_tcp.accepted");
  }

  private void count(String name) {
    counters.computeIfAbsent(name, n -> metrics.counter("choir." + n)).increment();
  }

  private void logOnce(String key, Object remote, String message) {
    long now = System.nanoTime();
    AtomicLong last = lastLogNs.computeIfAbsent(key, k -> new AtomicLong(now - LOG_INTERVAL_NS));
    long prev = last.get();
    if (now - prev >= LOG_INTERVAL_NS && last.compareAndSet(prev, now)) {
      log.atWarn().addKeyValue("reason", key).addKeyValue("remote", remote)
          .log(message + " (further ones of this reason are only counted for 10 s)");
    }
  }

  /** Every peer_tcp counter so far, by name without the choir. prefix (tests and status). */
  public Map<String, Long> counters() {
    Map<String, Long> out = new TreeMap<>();
    counters.forEach((k, v) -> out.put(k, (long) v.count()));
    return out;
  }
}
