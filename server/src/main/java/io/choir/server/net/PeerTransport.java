package io.choir.server.net;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import io.choir.proto.Fragment;
import io.choir.proto.MessageType;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.Prepare;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.security.ClusterKeys;
import io.choir.server.security.DatagramCodec;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.socket.nio.NioDatagramChannel;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.Set;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerTransport moves peer messages: PREPAREs and HEARTBEATs by IP multicast to every replica, the
 * rest (PREPARE_OK, NACK, resends) to one replica's peer address: by UDP unicast when the body fits
 * one datagram, else over a TCP peer stream ({@link PeerRouting}, {@link PeerStreams}); a message to
 * all that does not fit a datagram is fragmented when it is a PREPARE, and otherwise sent over every
 * other replica's stream. It only
 * encodes, decodes and checks; protocol decisions belong to the core (STYLE.md habit 6).
 *
 * <p>Every datagram is a {@link DatagramHeader} and a protobuf body, with a CRC32C, and sealed with
 * AES-GCM when the cluster has a key: {@link DatagramCodec} encodes every datagram this transport
 * sends (whole messages and FRAGMENTs alike) and judges every one it receives before anything of it is
 * interpreted. A datagram is dropped and counted, by reason, when the codec refuses it (see its
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
 * <p>Multicast stays where it is configured: the channels are created with the IPv4 family (an IPv6
 * socket would ignore IP_MULTICAST_IF for an IPv4 group and send through the default route, see
 * ../shared/ENVIRONMENT.md), IP_MULTICAST_IF and the group membership use the configured interface
 * (loopback by default), IP_MULTICAST_ALL is off on Linux, and the TTL is configurable (1 by default).
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
      long streamBufferBytes) {
    /** Default per-peer stream buffer: 16 MiB (four NACKs' worth of resends, 4 MiB each). */
    public static final long DEFAULT_STREAM_BUFFER_BYTES = 16L << 20;

    public Settings {
      peers = Map.copyOf(peers);
      if (maxReassembledBytes < 1 || maxStreamFrameBytes < 1 || streamBufferBytes < 1) {
        throw new IllegalArgumentException("transport bounds must be positive: " + maxReassembledBytes
            + ", " + maxStreamFrameBytes + ", " + streamBufferBytes);
      }
    }

    /** Settings with the bounds derived from the server's defaults (4 MiB batches, a 64 MiB window). */
    public Settings(int selfId, long clusterIdHash, Map<Integer, InetSocketAddress> peers,
        InetSocketAddress group, String interfaceName, int ttl, int maxDatagramBytes, int receiveBufferBytes,
        int testMulticastLossPercent, String testFaultFile) {
      this(selfId, clusterIdHash, peers, group, interfaceName, ttl, maxDatagramBytes, receiveBufferBytes,
          testMulticastLossPercent, testFaultFile, PeerRouting.maxReassembledBytes(4 << 20),
          PeerRouting.maxStreamFrameBytes(64 << 20, 8192, 4 << 20), DEFAULT_STREAM_BUFFER_BYTES);
    }
  }


  private final Settings settings;
  private final PeerSink sink;
  private final EventLoopGroup group;
  private final DatagramChannel unicast;
  private final DatagramChannel multicast;
  private final NetworkInterface iface;
  private final Reassembler reassembler;
  private final DatagramCodec codec;
  private final DropLog dropLog = new DropLog(DropLog.DEFAULT_INTERVAL_NS);
  private final PeerStreams streams;
  private final MeterRegistry metrics;
  private final Map<String, Counter> dropped = new ConcurrentHashMap<>();
  private final Map<String, Counter> streamDropped = new ConcurrentHashMap<>();
  private final Counter streamSent;
  private final Counter streamReceived;
  private final Counter sent;
  private final Counter sentMulticast;
  private final Counter received;
  private final Counter fragmentsSent;
  private final Counter ownLooped;
  /** Only for test_multicast_loss_percent; used on the transport's one event loop. */
  private final java.util.SplittableRandom lossRandom = new java.util.SplittableRandom();
  /** TEST ONLY (test_fault_file): peers cut off from this replica, both ways. */
  private volatile Set<Integer> blockedPeers = Set.of();

  /** A transport without a cluster key (datagrams checksummed, not sealed), in epoch 1 (tests). */
  public PeerTransport(Settings settings, PeerSink sink, MeterRegistry metrics)
      throws InterruptedException, SocketException {
    this(settings, null, 1, sink, metrics);
  }

  /**
   * A transport that seals with keys (null: no key) in epoch (this start's datagram epoch, already
   * persisted: see DatagramEpochs).
   */
  public PeerTransport(Settings settings, ClusterKeys keys, long epoch, PeerSink sink, MeterRegistry metrics)
      throws InterruptedException, SocketException {
    this.settings = settings;
    this.codec = new DatagramCodec(settings.selfId(), settings.clusterIdHash(), settings.peers().keySet(), keys,
        epoch);
    this.sink = sink;
    this.metrics = metrics;
    this.sent = metrics.counter("choir.datagrams.sent");
    this.sentMulticast = metrics.counter("choir.datagrams.sent_multicast");
    this.received = metrics.counter("choir.datagrams.received");
    this.fragmentsSent = metrics.counter("choir.datagrams.fragments_sent");
    this.ownLooped = metrics.counter("choir.datagrams.own_looped_back");
    this.streamSent = metrics.counter("choir.peer_stream.sent");
    this.streamReceived = metrics.counter("choir.peer_stream.received");
    for (String reason : DatagramCodec.REASONS) {
      dropped.computeIfAbsent(reason, r -> metrics.counter("choir.datagrams.dropped." + r)); // shown at 0 too
    }
    // Only multicast PREPAREs are fragmented now (big unicast goes over a peer stream), and one holds
    // at most one entry: see PeerRouting.maxReassembledBytes.
    this.reassembler = new Reassembler(PeerRouting.REASSEMBLY_MESSAGES,
        (long) PeerRouting.REASSEMBLY_LARGEST_MESSAGES * settings.maxReassembledBytes(),
        settings.maxReassembledBytes());
    this.iface = NetworkInterface.getByName(settings.interfaceName());
    if (iface == null) {
      throw new IllegalArgumentException("multicast_interface '" + settings.interfaceName()
          + "' does not exist on this machine");
    }
    InetAddress ifaceAddress = iface.inetAddresses().filter(a -> a instanceof java.net.Inet4Address)
        .findFirst().orElseThrow(() -> new IllegalArgumentException(
            "multicast_interface '" + settings.interfaceName() + "' has no IPv4 address"));
    boolean epoll = NettyIo.epoll();
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    this.group = new MultiThreadIoEventLoopGroup(1, factory);
    ChannelFactory<DatagramChannel> channels = epoll
        ? () -> new EpollDatagramChannel(SocketProtocolFamily.INET)
        : () -> new NioDatagramChannel(SocketProtocolFamily.INET);
    Bootstrap base = new Bootstrap().group(group).channelFactory(channels)
        .option(ChannelOption.SO_RCVBUF, settings.receiveBufferBytes())
        .option(ChannelOption.RCVBUF_ALLOCATOR, new FixedRecvByteBufAllocator(65_536))
        .option(ChannelOption.IP_MULTICAST_IF, iface)
        .option(ChannelOption.IP_MULTICAST_TTL, settings.ttl())
        .option(ChannelOption.IP_MULTICAST_LOOP_DISABLED, false)
        .handler(new Inbound());
    if (epoll) {
      base.option(EpollChannelOption.IP_MULTICAST_ALL, false);
    }
    InetSocketAddress self = settings.peers().get(settings.selfId());
    this.streams = new PeerStreams(settings.peers(), settings.maxStreamFrameBytes(),
        settings.streamBufferBytes(), System::nanoTime, this::streamDrop, streamSent::increment);
    try {
      this.unicast = (DatagramChannel) base.clone().bind(self).sync().channel();
      Bootstrap mc = base.clone().option(ChannelOption.SO_REUSEADDR, true);
      if (epoll) {
        mc.option(EpollChannelOption.SO_REUSEPORT, true);
      }
      this.multicast = (DatagramChannel) mc.bind(settings.group()).sync().channel();
      multicast.joinGroup(settings.group(), iface).sync();
    } catch (RuntimeException | InterruptedException e) {
      streams.close();
      group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      throw e;
    }
    if (settings.testFaultFile() != null && !settings.testFaultFile().isEmpty()) {
      java.nio.file.Path faults = java.nio.file.Path.of(settings.testFaultFile());
      group.next().scheduleAtFixedRate(() -> readFaultFile(faults), 0, 100, TimeUnit.MILLISECONDS);
      log.atWarn().addKeyValue("file", faults).log("TEST ONLY: peer partitions are read from a fault file");
    }
    int granted = unicast.config().getOption(ChannelOption.SO_RCVBUF);
    if (granted < settings.receiveBufferBytes()) {
      log.atWarn().addKeyValue("asked", settings.receiveBufferBytes()).addKeyValue("granted", granted)
          .log("the OS clamped the UDP receive buffer (raise net.core.rmem_max); loss under bursts will be repaired by NACK");
    }
    log.atInfo().addKeyValue("peer", self).addKeyValue("group", settings.group())
        .addKeyValue("interface", settings.interfaceName()).addKeyValue("interface_address", ifaceAddress)
        .addKeyValue("epoll", epoll).addKeyValue("sealed", codec.sealing())
        .addKeyValue("datagram_epoch", epoch).log("peer transport up");
  }

  /** Reads the comma-separated ids of the peers to cut off (a missing or empty file heals). */
  private void readFaultFile(java.nio.file.Path file) {
    try {
      String text = java.nio.file.Files.exists(file) ? java.nio.file.Files.readString(file).trim() : "";
      Set<Integer> ids = new java.util.HashSet<>();
      for (String part : text.split("[,\\s]+")) {
        if (!part.isEmpty()) {
          ids.add(Integer.parseInt(part));
        }
      }
      blockedPeers = Set.copyOf(ids);
    } catch (IOException | NumberFormatException e) {
      log.atWarn().addKeyValue("file", file).addKeyValue("reason", e.getMessage()).log("unreadable fault file");
    }
  }

  /** Sends body to replica to, or to all by multicast when to is 0 (any thread). */
  public void send(int to, long view, MessageType type, MessageLite body) {
    if (to != 0 && blockedPeers.contains(to)) {
      drop("test_partition_out");
      return;
    }
    InetSocketAddress dest = to == 0 ? settings.group() : settings.peers().get(to);
    if (dest == null) {
      drop("unknown_destination");
      return;
    }
    PeerRouting.Route route =
        PeerRouting.route(to, type, body.getSerializedSize(), settings.maxDatagramBytes());
    if (route == PeerRouting.Route.STREAM || route == PeerRouting.Route.STREAM_TO_EACH) {
      PeerEnvelope envelope;
      try {
        envelope = PeerEnvelopes.wrap(settings.clusterIdHash(), settings.selfId(), view, type, body);
      } catch (IllegalArgumentException e) {
        streamDrop("unknown_type");
        return;
      }
      if (route == PeerRouting.Route.STREAM) {
        streams.send(to, envelope);
        return;
      }
      for (int peer : settings.peers().keySet()) {
        if (peer == settings.selfId()) {
          continue;
        }
        if (blockedPeers.contains(peer)) {
          drop("test_partition_out");
          continue;
        }
        streams.send(peer, envelope);
      }
      return;
    }
    byte[] bytes = body.toByteArray();
    int room = PeerRouting.datagramRoom(settings.maxDatagramBytes());
    if (bytes.length <= room) {
      write(dest, type, view, bytes, to == 0);
      return;
    }
    // Route.FRAGMENTS: a multicast PREPARE. A Fragment adds its own fields (about 30 bytes).
    long firstOp = body instanceof Prepare p ? p.getFirstOp() : 0;
    for (Fragment f : Reassembler.split(firstOp, bytes, room - 40)) {
      write(dest, MessageType.FRAGMENT, view, wrap(type, f), to == 0);
      fragmentsSent.increment();
    }
  }

  /** The fragment body is the original type's number followed by the Fragment. */
  private static byte[] wrap(MessageType type, Fragment f) {
    byte[] fb = f.toByteArray();
    byte[] out = new byte[fb.length + 1];
    out[0] = (byte) type.getNumber();
    System.arraycopy(fb, 0, out, 1, fb.length);
    return out;
  }

  private void write(InetSocketAddress dest, MessageType type, long view, byte[] body, boolean toGroup) {
    byte[] datagram;
    try {
      datagram = codec.encode(type.getNumber(), view, body);
    } catch (IllegalStateException exhausted) {
      drop("counter_exhausted", null); // 2^48 datagrams in one start: a restart takes a new epoch
      return;
    }
    ByteBuf buf = Unpooled.wrappedBuffer(datagram);
    unicast.writeAndFlush(new DatagramPacket(buf, dest), unicast.voidPromise());
    sent.increment();
    if (toGroup) {
      sentMulticast.increment();
    }
  }

  private void drop(String reason) {
    dropped.computeIfAbsent(reason, r -> metrics.counter("choir.datagrams.dropped." + r)).increment();
  }

  /** Counts a dropped received datagram and logs it (rate-limited per reason) with its source. */
  private void drop(String reason, InetSocketAddress from) {
    drop(reason);
    long unlogged = dropLog.onDrop(reason, System.nanoTime());
    if (unlogged >= 0) {
      log.atWarn().addKeyValue("reason", reason).addKeyValue("from", from)
          .addKeyValue("unlogged_since_last", unlogged)
          .log("dropped a peer datagram (logged at most once per 10 s per reason)");
    }
  }

  /** Dropped datagrams by reason (the reasons with at least one drop; status shows every counter). */
  public Map<String, Long> droppedByReason() {
    Map<String, Long> out = new java.util.TreeMap<>();
    dropped.forEach((k, v) -> {
      if (v.count() > 0) {
        out.put(k, (long) v.count());
      }
    });
    return out;
  }

  private void streamDrop(String reason) {
    streamDropped.computeIfAbsent(reason, r -> metrics.counter("choir.peer_stream.dropped." + r)).increment();
  }

  /** Peer stream messages dropped (sent or received) by reason. */
  public Map<String, Long> streamDroppedByReason() {
    Map<String, Long> out = new java.util.TreeMap<>();
    streamDropped.forEach((k, v) -> out.put(k, (long) v.count()));
    return out;
  }

  /**
   * Opens every later peer stream connection as auth says (proven with the cluster key, or from this
   * replica's peer host without one); call it before the first send (peertcp, issue 10).
   */
  public void authenticateStreams(PeerTcpAuth auth) {
    streams.authenticate(auth);
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
    return (long) streamReceived.count();
  }

  /**
   * The sink of peer streams: give it to this replica's {@link StateTransferServer}, which accepts
   * peer streams on the same port and hands their envelopes here.
   */
  public PeerStreamSink streamSink() {
    return new PeerStreamSink() {
      @Override
      public int maxFrameBytes() {
        return settings.maxStreamFrameBytes();
      }

      @Override
      public Verdict onEnvelope(PeerEnvelope envelope) {
        return acceptStream(envelope);
      }

      @Override
      public void dropped(String reason) {
        streamDrop(reason);
      }
    };
  }

  /** Checks one envelope from a peer stream like a datagram and hands it to the core (any thread). */
  private PeerStreamSink.Verdict acceptStream(PeerEnvelope envelope) {
    if (envelope.getProtocolVersion() != DatagramHeader.PROTOCOL_VERSION) {
      streamDrop("bad_version");
      return PeerStreamSink.Verdict.REFUSED;
    }
    if (envelope.getClusterId() != settings.clusterIdHash()) {
      streamDrop("foreign_cluster");
      return PeerStreamSink.Verdict.REFUSED;
    }
    int sender = envelope.getSender();
    if (sender == settings.selfId() || !settings.peers().containsKey(sender)) {
      streamDrop("unknown_sender");
      return PeerStreamSink.Verdict.REFUSED;
    }
    if (blockedPeers.contains(sender)) {
      streamDrop("test_partition");
      return PeerStreamSink.Verdict.DROPPED;
    }
    MessageType type = PeerEnvelopes.type(envelope);
    if (type == null) {
      streamDrop("unknown_type");
      return PeerStreamSink.Verdict.DROPPED;
    }
    if (!sink.offerPeer(sender, envelope.getView(), type, PeerEnvelopes.body(envelope))) {
      streamDrop("queue_full");
      return PeerStreamSink.Verdict.DROPPED;
    }
    streamReceived.increment();
    return PeerStreamSink.Verdict.DELIVERED;
  }

  /** Decodes and checks datagrams; shared by both channels, which run on the transport's one event loop. */
  @io.netty.channel.ChannelHandler.Sharable
  private final class Inbound extends SimpleChannelInboundHandler<DatagramPacket> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, DatagramPacket packet) {
      received.increment();
      if (settings.testMulticastLossPercent() > 0 && packet.recipient() != null
          && packet.recipient().getAddress().isMulticastAddress()
          && lossRandom.nextInt(100) < settings.testMulticastLossPercent()) {
        drop("test_loss");
        return;
      }
      ByteBuf in = packet.content();
      InetSocketAddress from = packet.sender();
      byte[] bytes = ByteBufUtil.getBytes(in);
      DatagramCodec.Verdict verdict = codec.decode(bytes, bytes.length);
      if (verdict instanceof DatagramCodec.Own) {
        ownLooped.increment(); // our own multicast, looped back to our group socket: expected, not a drop
        return;
      }
      if (verdict instanceof DatagramCodec.Dropped d) {
        drop(d.reason(), from);
        return;
      }
      DatagramCodec.Accepted accepted = (DatagramCodec.Accepted) verdict;
      DatagramHeader h = accepted.header();
      byte[] body = accepted.body();
      if (blockedPeers.contains(h.sender())) {
        drop("test_partition");
        return;
      }
      MessageType type = MessageType.forNumber(h.messageType());
      if (type == null || type == MessageType.MESSAGE_TYPE_UNKNOWN) {
        drop("unknown_type", from);
        return;
      }
      try {
        if (type == MessageType.FRAGMENT) {
          if (body.length == 0) {
            drop("malformed", from);
            return;
          }
          MessageType inner = MessageType.forNumber(body[0] & 0xff);
          if (inner == null || inner == MessageType.FRAGMENT || PeerMessageParsers.parser(inner) == null) {
            drop("malformed", from);
            return;
          }
          Fragment f = Fragment.parser().parseFrom(body, 1, body.length - 1);
          byte[] whole = reassembler.add(h.sender(), h.view(), f);
          if (whole == null) {
            return;
          }
          deliver(h, inner, PeerMessageParsers.parser(inner).parseFrom(whole));
          return;
        }
        Parser<? extends MessageLite> parser = PeerMessageParsers.parser(type);
        if (parser == null) {
          drop("unknown_type", from);
          return;
        }
        deliver(h, type, parser.parseFrom(body));
      } catch (InvalidProtocolBufferException | RuntimeException e) {
        drop("malformed", from); // an authentic sender's bug or a forger's: either way nothing to act on
      }
    }

    private void deliver(DatagramHeader h, MessageType type, MessageLite body) {
      if (!sink.offerPeer(h.sender(), h.view(), type, body)) {
        drop("queue_full");
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.atDebug().setCause(cause).log("peer channel error");
    }
  }

  @Override
  public void close() {
    try {
      multicast.leaveGroup(settings.group(), iface).awaitUninterruptibly(500, TimeUnit.MILLISECONDS);
    } catch (RuntimeException ignored) {
      // closing anyway
    }
    multicast.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    unicast.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    streams.close();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2, TimeUnit.SECONDS);
  }
}
