package io.choir.server.net;

import com.google.protobuf.MessageLite;
import io.choir.proto.Fragment;
import io.choir.proto.MessageType;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.Prepare;
import io.choir.proto.TransportProbe;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.security.ClusterKeys;
import io.choir.server.security.DatagramCodec;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerTransport moves peer messages. A message to one replica goes to its peer address by UDP
 * unicast when the body fits one datagram, else over a TCP peer stream ({@link PeerRouting}, {@link
 * PeerStreams}). A message to all (the core's send to 0) goes as peer_transport ({@link
 * TransportMode}) says: multicast (one datagram; a bigger PREPARE as fragments, any other big message
 * over every other replica's stream), unicast (one datagram to each other member, a bigger body over
 * each member's stream; the group is never joined), or auto (multicast when at least one peer answers
 * the {@link MulticastProbes}, and unicast to every peer that does not). The core never knows which.
 * Peer addresses come from the {@link PeerDirectory} (hosts may be DNS names, resolved again when a
 * peer seems unreachable). It only encodes, decodes and checks; protocol decisions belong to the core
 * (STYLE.md habit 6). Its parts:
 * {@link PeerChannels} (the UDP sockets and their event loop), {@link PeerDatagramHandler} (what is
 * received), {@link PeerStreamInbound} (what arrives over peer streams), {@link PeerDrops} (drops by
 * reason) and {@link TestPeerFaults} (test partitions and loss).
 *
 * <p>Every datagram is a {@link DatagramHeader} and a protobuf body, with a CRC32C, and sealed with
 * AES-GCM when the cluster has a key: {@link DatagramCodec} encodes every datagram this transport
 * sends (whole messages and FRAGMENTs alike) and judges every one it receives before anything of it is
 * interpreted ({@link PeerDatagramHandler}). A datagram is dropped and counted, by reason, when the codec refuses it (see its
 * reasons: bad_checksum, unsealed, unknown_key, replay, bad_seal, sealed_without_key, ...; our own
 * multicast looped back is counted apart), has an unknown type, or a body that does not parse; or when
 * the replica's peer queue is full. A drop is logged as a warning with the sender's address at most
 * once per {@link DropLog#DEFAULT_INTERVAL_NS} per reason. A multicast body bigger than max_datagram_bytes travels as
 * FRAGMENTs and is reassembled with bounded memory: at most maxReassembledBytes per message (one
 * PREPARE of one entry: max_batch_bytes plus slack, see {@link PeerRouting#maxReassembledBytes}), 64
 * partial messages and 4 of the largest in total.
 *
 * <p>Peer streams: the envelopes that arrive over TCP (accepted by the {@link StateTransferServer} on
 * the same port and handed to {@link #streamSink()}) pass the same checks as datagrams (protocol
 * version, cluster id, sender a member and not this replica, a known type, a frame at most
 * maxStreamFrameBytes) and are counted by reason under choir.peer_stream.dropped.*
 * ({@link #streamDroppedByReason()}).
 *
 * <p>Multicast stays where it is configured (IPv4 sockets, the configured interface, TTL 1 by
 * default): see {@link PeerChannels}.
 */
public final class PeerTransport implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PeerTransport.class);

  /**
   * Settings of the transport.
   *
   * @param maxReassembledBytes largest fragmented message reassembled ({@link
   *     PeerRouting#maxReassembledBytes} of max_batch_bytes)
   * @param maxStreamFrameBytes largest envelope sent or accepted on a peer stream ({@link
   *     PeerRouting#maxStreamFrameBytes})
   * @param streamBufferBytes queued and unwritten bytes per peer stream before messages are dropped
   */
  public record Settings(
      int selfId,
      long clusterIdHash,
      Map<Integer, InetSocketAddress> peers,
      InetSocketAddress group,
      String interfaceName,
      int ttl,
      int maxDatagramBytes,
      int receiveBufferBytes,
      int testMulticastLossPercent,
      String testFaultFile,
      int maxReassembledBytes,
      int maxStreamFrameBytes,
      long streamBufferBytes,
      TransportMode mode,
      long probeIntervalNs,
      long silenceNs) {
    /** Default per-peer stream buffer: 16 MiB (four NACKs' worth of resends, 4 MiB each). */
    public static final long DEFAULT_STREAM_BUFFER_BYTES = 16L << 20;
    /** Default silence after which a peer's name is resolved again (a few default heartbeats). */
    public static final long DEFAULT_SILENCE_NS = TimeUnit.MILLISECONDS.toNanos(200);

    public Settings {
      peers = Map.copyOf(peers);
      if (maxReassembledBytes < 1 || maxStreamFrameBytes < 1 || streamBufferBytes < 1 || probeIntervalNs < 1
          || silenceNs < 1) {
        throw new IllegalArgumentException("transport bounds must be positive: " + maxReassembledBytes
            + ", " + maxStreamFrameBytes + ", " + streamBufferBytes + ", " + probeIntervalNs + ", " + silenceNs);
      }
    }

    /** Settings of the multicast transport with the given bounds. */
    public Settings(int selfId, long clusterIdHash, Map<Integer, InetSocketAddress> peers,
        InetSocketAddress group, String interfaceName, int ttl, int maxDatagramBytes, int receiveBufferBytes,
        int testMulticastLossPercent, String testFaultFile, int maxReassembledBytes, int maxStreamFrameBytes,
        long streamBufferBytes) {
      this(selfId, clusterIdHash, peers, group, interfaceName, ttl, maxDatagramBytes, receiveBufferBytes,
          testMulticastLossPercent, testFaultFile, maxReassembledBytes, maxStreamFrameBytes, streamBufferBytes,
          TransportMode.MULTICAST, MulticastProbes.DEFAULT_INTERVAL_NS, DEFAULT_SILENCE_NS);
    }

    /** Settings with the bounds derived from the server's defaults (4 MiB batches, a 64 MiB window). */
    public Settings(int selfId, long clusterIdHash, Map<Integer, InetSocketAddress> peers,
        InetSocketAddress group, String interfaceName, int ttl, int maxDatagramBytes, int receiveBufferBytes,
        int testMulticastLossPercent, String testFaultFile) {
      this(selfId, clusterIdHash, peers, group, interfaceName, ttl, maxDatagramBytes, receiveBufferBytes,
          testMulticastLossPercent, testFaultFile, PeerRouting.maxReassembledBytes(4 << 20),
          PeerRouting.maxStreamFrameBytes(64 << 20, 8192, 4 << 20), DEFAULT_STREAM_BUFFER_BYTES);
    }

    /** These settings with another mode and probe interval (tests). */
    public Settings withMode(TransportMode newMode, long newProbeIntervalNs) {
      return new Settings(selfId, clusterIdHash, peers, group, interfaceName, ttl, maxDatagramBytes,
          receiveBufferBytes, testMulticastLossPercent, testFaultFile, maxReassembledBytes, maxStreamFrameBytes,
          streamBufferBytes, newMode, newProbeIntervalNs, silenceNs);
    }
  }

  private final Settings settings;
  private final PeerDirectory directory;
  private final DatagramCodec codec;
  private final TestPeerFaults faults;
  private final PeerDrops drops;
  private final PeerStreamInbound streamInbound;
  private final PeerChannels channels;
  private final PeerStreams streams;
  private final MulticastProbes probes;
  /** Runs the name resolutions, which may block (never the event loops). */
  private final PeerResolverThread resolver;
  private final Counter streamSent;
  private final Counter sent;
  private final Counter sentMulticast;
  private final Counter sentUnicastFanout;
  private final Counter fragmentsSent;

  /** A transport without a cluster key (datagrams checksummed, not sealed), in epoch 1 (tests). */
  public PeerTransport(Settings settings, PeerSink sink, MeterRegistry metrics)
      throws InterruptedException, SocketException {
    this(settings, null, 1, sink, metrics);
  }

  /**
   * A transport that seals with keys (null: no key) in epoch (this start's datagram epoch, already
   * persisted: see DatagramEpochs), with peer streams unauthenticated (tests).
   */
  public PeerTransport(Settings settings, ClusterKeys keys, long epoch, PeerSink sink, MeterRegistry metrics)
      throws InterruptedException, SocketException {
    this(settings, keys, epoch, null, sink, metrics);
  }

  /**
   * A transport that seals with keys (null: no key) in epoch (this start's datagram epoch, already
   * persisted: see DatagramEpochs) and opens every peer stream connection as streamAuth says (proven
   * with the cluster key, or from this replica's peer host without one; null: plain and unchecked,
   * tests only; peertcp, issue 10). Peer hosts are resolved by the system's resolver.
   */
  public PeerTransport(Settings settings, ClusterKeys keys, long epoch, PeerTcpAuth streamAuth, PeerSink sink,
      MeterRegistry metrics) throws InterruptedException, SocketException {
    this(settings, streamAuth != null ? streamAuth.directory()
        : new PeerDirectory(settings.selfId(), settings.peers(), PeerDirectory.Resolver.SYSTEM, System::nanoTime,
            settings.silenceNs(), metrics), keys, epoch, streamAuth, sink, metrics);
  }

  /**
   * A transport whose peer addresses come from directory (which replaces settings.peers(); the
   * codec's known senders, the streams' links and the stream checks follow its {@link
   * PeerDirectory#update}), otherwise as above.
   */
  public PeerTransport(Settings settings, PeerDirectory directory, ClusterKeys keys, long epoch,
      PeerTcpAuth streamAuth, PeerSink sink, MeterRegistry metrics) throws InterruptedException, SocketException {
    this.settings = settings;
    this.directory = directory;
    this.codec = new DatagramCodec(settings.selfId(), settings.clusterIdHash(), directory.ids(), keys, epoch);
    this.sent = metrics.counter("choir.datagrams.sent");
    this.sentMulticast = metrics.counter("choir.datagrams.sent_multicast");
    this.sentUnicastFanout = metrics.counter("choir.datagrams.sent_unicast_fanout");
    this.fragmentsSent = metrics.counter("choir.datagrams.fragments_sent");
    this.streamSent = metrics.counter("choir.peer_stream.sent");
    this.drops = new PeerDrops(metrics);
    this.faults = new TestPeerFaults(settings.testMulticastLossPercent());
    this.streamInbound = new PeerStreamInbound(settings.selfId(), settings.clusterIdHash(),
        directory.ids(), settings.maxStreamFrameBytes(), sink, faults, drops, metrics);
    this.probes = new MulticastProbes(directory, settings.mode() == TransportMode.AUTO, settings.probeIntervalNs(),
        System::nanoTime, drops, p -> write(settings.group(), MessageType.TRANSPORT_PROBE, 0, p.toByteArray(),
            Fanout.PROBE), this::answerProbe, metrics);
    // Only multicast PREPAREs are fragmented now (big unicast goes over a peer stream), and one holds
    // at most one entry: see PeerRouting.maxReassembledBytes.
    Reassembler reassembler = new Reassembler(PeerRouting.REASSEMBLY_MESSAGES,
        (long) PeerRouting.REASSEMBLY_LARGEST_MESSAGES * settings.maxReassembledBytes(),
        settings.maxReassembledBytes());
    PeerDatagramHandler inbound =
        new PeerDatagramHandler(codec, reassembler, sink, faults, drops, directory, probes, metrics);
    InetSocketAddress self = directory.address(settings.selfId());
    InetSocketAddress bind = self != null ? self : new InetSocketAddress(directoryPort(settings));
    this.resolver = new PeerResolverThread(directory, settings.silenceNs());
    boolean multicast = settings.mode() != TransportMode.UNICAST;
    try {
      this.channels = new PeerChannels(bind, settings.group(), settings.interfaceName(), settings.ttl(),
          settings.receiveBufferBytes(), inbound, multicast);
    } catch (RuntimeException | InterruptedException | SocketException e) {
      resolver.close();
      throw e;
    }
    this.streams = new PeerStreams(directory, settings.maxStreamFrameBytes(), settings.streamBufferBytes(),
        System::nanoTime, drops::stream, streamSent::increment, streamAuth, resolver::suspect);
    directory.onMembersChanged(ids -> {
      codec.updateMembers(directory.acceptedIds()); // a former member may not know it was removed
      streamInbound.updateMembers(ids);
      streams.updateLinks(ids);
    });
    if (settings.mode() == TransportMode.AUTO) {
      channels.eventLoops().next().scheduleAtFixedRate(probes::tick, 0, probes.tickNs(), TimeUnit.NANOSECONDS);
    }
    if (settings.testFaultFile() != null && !settings.testFaultFile().isEmpty()) {
      Path faultFile = Path.of(settings.testFaultFile());
      channels.eventLoops().next().scheduleAtFixedRate(() -> faults.readFaultFile(faultFile), 0,
          TestPeerFaults.FAULT_FILE_POLL_MS, TimeUnit.MILLISECONDS);
      log.atWarn().addKeyValue("file", faultFile).log("TEST ONLY: peer partitions are read from a fault file");
    }
    int granted = channels.grantedReceiveBufferBytes();
    if (granted < settings.receiveBufferBytes()) {
      log.atWarn().addKeyValue("asked", settings.receiveBufferBytes()).addKeyValue("granted", granted)
          .log("the OS clamped the UDP receive buffer (raise net.core.rmem_max); loss under bursts will be repaired by NACK");
    }
    log.atInfo().addKeyValue("peer", bind).addKeyValue("mode", mode())
        .addKeyValue("group", multicast ? settings.group() : null)
        .addKeyValue("interface", multicast ? settings.interfaceName() : null)
        .addKeyValue("interface_address", channels.interfaceAddress())
        .addKeyValue("epoll", channels.epoll()).addKeyValue("sealed", codec.sealing())
        .addKeyValue("datagram_epoch", epoch).log("peer transport up");
  }

  /** The own peer port, for a wildcard bind while the own name does not resolve yet. */
  private static int directoryPort(Settings settings) {
    InetSocketAddress configured = settings.peers().get(settings.selfId());
    return configured == null ? 0 : configured.getPort();
  }

  /**
   * How a datagram is counted: a message to the group (sent_multicast), to one peer, one copy of a
   * message to all sent to each (sent_unicast_fanout), or the transport's own probe (probes_sent).
   */
  private enum Fanout { GROUP, ONE, EACH, PROBE }

  /** Sends body to replica to, or to all when to is 0, as the mode says (any thread). */
  public void send(int to, long view, MessageType type, MessageLite body) {
    if (to == 0) {
      sendToAll(view, type, body);
      return;
    }
    if (faults.blocks(to)) {
      drops.datagram("test_partition_out");
      return;
    }
    if (!directory.isMember(to) && !directory.isFormer(to)) {
      drops.datagram("unknown_destination");
      return;
    }
    PeerRouting.Route route = PeerRouting.route(to, type, body.getSerializedSize(), settings.maxDatagramBytes());
    if (route == PeerRouting.Route.STREAM) {
      PeerEnvelope envelope = envelope(view, type, body);
      if (envelope != null) {
        streams.send(to, envelope);
      }
      return;
    }
    toPeer(to, type, view, body.toByteArray(), Fanout.ONE);
  }

  /**
   * A message to all: by multicast (multicast mode, or auto while at least one peer is reached by
   * multicast), and by unicast to every peer multicast does not reach (unicast mode: every peer).
   */
  private void sendToAll(long view, MessageType type, MessageLite body) {
    int size = body.getSerializedSize();
    TransportMode mode = settings.mode();
    boolean byGroup = mode == TransportMode.MULTICAST
        || (mode == TransportMode.AUTO && probes.anyReached());
    if (byGroup) {
      PeerRouting.Route route = PeerRouting.route(0, type, size, settings.maxDatagramBytes());
      if (route == PeerRouting.Route.STREAM_TO_EACH) {
        eachPeer(view, type, body, size, false); // a big non-PREPARE goes over every stream anyway
        return;
      }
      byte[] bytes = body.toByteArray();
      if (route == PeerRouting.Route.DATAGRAM) {
        write(settings.group(), type, view, bytes, Fanout.GROUP);
      } else {
        // Route.FRAGMENTS: a multicast PREPARE. A Fragment adds its own fields (about 30 bytes).
        long firstOp = body instanceof Prepare p ? p.getFirstOp() : 0;
        int room = PeerRouting.datagramRoom(settings.maxDatagramBytes());
        for (Fragment f : Reassembler.split(firstOp, bytes, room - 40)) {
          write(settings.group(), MessageType.FRAGMENT, view, wrap(type, f), Fanout.GROUP);
          fragmentsSent.increment();
        }
      }
      if (mode == TransportMode.MULTICAST) {
        return;
      }
    }
    eachPeer(view, type, body, size, byGroup);
  }

  /** Sends a message to all to each other member (only those multicast misses when skipReached). */
  private void eachPeer(long view, MessageType type, MessageLite body, int size, boolean skipReached) {
    PeerRouting.Route route = PeerRouting.routeToEach(size, settings.maxDatagramBytes());
    PeerEnvelope envelope = null;
    byte[] bytes = null;
    for (int peer : directory.peerIds()) {
      if (skipReached && probes.reached(peer)) {
        continue;
      }
      if (faults.blocks(peer)) {
        drops.datagram("test_partition_out");
        continue;
      }
      if (route == PeerRouting.Route.STREAM_TO_EACH) {
        envelope = envelope != null ? envelope : envelope(view, type, body);
        if (envelope == null) {
          return;
        }
        streams.send(peer, envelope);
      } else {
        bytes = bytes != null ? bytes : body.toByteArray();
        toPeer(peer, type, view, bytes, Fanout.EACH);
      }
    }
  }

  private PeerEnvelope envelope(long view, MessageType type, MessageLite body) {
    try {
      return PeerEnvelopes.wrap(settings.clusterIdHash(), settings.selfId(), view, type, body);
    } catch (IllegalArgumentException e) {
      drops.stream("unknown_type");
      return null;
    }
  }

  /** One datagram to member peer at its address now (none yet: dropped, counted, resolved again). */
  private void toPeer(int peer, MessageType type, long view, byte[] bytes, Fanout fanout) {
    InetSocketAddress dest = directory.address(peer);
    if (dest == null) {
      drops.datagram("unresolved_destination");
      resolver.suspect(peer);
      return;
    }
    write(dest, type, view, bytes, fanout);
  }

  /** The unicast answer to a peer's probe (event loop). */
  private void answerProbe(int peer, TransportProbe answer) {
    toPeer(peer, MessageType.TRANSPORT_PROBE, 0, answer.toByteArray(), Fanout.PROBE);
  }

  /** The fragment body is the original type's number followed by the Fragment. */
  private static byte[] wrap(MessageType type, Fragment f) {
    byte[] fb = f.toByteArray();
    byte[] out = new byte[fb.length + 1];
    out[0] = (byte) type.getNumber();
    System.arraycopy(fb, 0, out, 1, fb.length);
    return out;
  }

  private void write(InetSocketAddress dest, MessageType type, long view, byte[] body, Fanout fanout) {
    byte[] datagram;
    try {
      datagram = codec.encode(type.getNumber(), view, body);
    } catch (IllegalStateException exhausted) {
      drops.datagram("counter_exhausted", null); // 2^48 datagrams in one start: a restart takes a new epoch
      return;
    }
    channels.write(dest, datagram);
    sent.increment();
    if (fanout == Fanout.GROUP) {
      sentMulticast.increment();
    } else if (fanout == Fanout.EACH) {
      sentUnicastFanout.increment();
    }
  }

  /** The mode (peer_transport). */
  public TransportMode mode() {
    return settings.mode();
  }

  /** With auto: the peers reached by multicast now (else empty). */
  public Set<Integer> multicastPeers() {
    return settings.mode() == TransportMode.AUTO ? probes.reachedPeers() : Set.of();
  }

  /** Resolves peer's name again soon, on the resolver thread (rate-limited; any thread). */
  public void suspect(int peer) {
    resolver.suspect(peer);
  }

  /** The directory of peer addresses. */
  public PeerDirectory directory() {
    return directory;
  }

  /** Dropped datagrams by reason (the reasons with at least one drop; status shows every counter). */
  public Map<String, Long> droppedByReason() {
    return drops.datagramsByReason();
  }

  /** Peer stream messages dropped (sent or received) by reason. */
  public Map<String, Long> streamDroppedByReason() {
    return drops.streamByReason();
  }

  /** The outbound peer streams (tests). */
  PeerStreams streams() {
    return streams;
  }

  /** Envelopes sent over peer streams (written to a socket). */
  public long streamMessagesSent() {
    return (long) streamSent.count();
  }

  /** Envelopes received over peer streams and handed to the core. */
  public long streamMessagesReceived() {
    return streamInbound.received();
  }

  /**
   * The sink of peer streams: give it to this replica's {@link StateTransferServer}, which accepts
   * peer streams on the same port and hands their envelopes here.
   */
  public PeerStreamSink streamSink() {
    return streamInbound;
  }

  @Override
  public void close() {
    resolver.close();
    channels.close();
    streams.close();
  }
}
