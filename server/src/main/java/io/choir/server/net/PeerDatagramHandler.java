package io.choir.server.net;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import io.choir.proto.Fragment;
import io.choir.proto.MessageType;
import io.choir.proto.TransportProbe;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.security.DatagramCodec;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.DatagramPacket;
import java.net.InetSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerDatagramHandler takes every datagram the peer transport receives, on the unicast and the
 * multicast channel alike (both run on the transport's one event loop): the {@link DatagramCodec}
 * judges it before anything of it is interpreted, our own multicast looped back is counted apart,
 * FRAGMENTs are reassembled ({@link Reassembler}, bounded), the body is parsed by its type and handed
 * to the {@link PeerSink}; a TRANSPORT_PROBE goes to the transport's {@link MulticastProbes}, never to
 * the core, and every accepted datagram tells the {@link PeerDirectory} its sender was heard. Everything refused is dropped and counted by reason ({@link PeerDrops}); it
 * decides nothing of the protocol (STYLE.md habit 6).
 */
@ChannelHandler.Sharable
final class PeerDatagramHandler extends SimpleChannelInboundHandler<DatagramPacket> {
  /** The transport's logger: its lines keep the name operators know them by. */
  private static final Logger log = LoggerFactory.getLogger(PeerTransport.class);

  private final DatagramCodec codec;
  private final Reassembler reassembler;
  private final PeerSink sink;
  private final TestPeerFaults faults;
  private final PeerDrops drops;
  private final PeerDirectory directory;
  private final MulticastProbes probes;
  private final Counter received;
  private final Counter ownLooped;

  PeerDatagramHandler(DatagramCodec codec, Reassembler reassembler, PeerSink sink, TestPeerFaults faults,
      PeerDrops drops, PeerDirectory directory, MulticastProbes probes, MeterRegistry metrics) {
    this.directory = directory;
    this.probes = probes;
    this.codec = codec;
    this.reassembler = reassembler;
    this.sink = sink;
    this.faults = faults;
    this.drops = drops;
    this.received = metrics.counter("choir.datagrams.received");
    this.ownLooped = metrics.counter("choir.datagrams.own_looped_back");
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, DatagramPacket packet) {
    received.increment();
    if (faults.losesMulticast(packet.recipient())) {
      drops.datagram("test_loss");
      return;
    }
    InetSocketAddress from = packet.sender();
    byte[] bytes = ByteBufUtil.getBytes(packet.content());
    DatagramCodec.Verdict verdict = codec.decode(bytes, bytes.length);
    if (verdict instanceof DatagramCodec.Own) {
      ownLooped.increment(); // our own multicast, looped back to our group socket: expected, not a drop
      return;
    }
    if (verdict instanceof DatagramCodec.Dropped d) {
      drops.datagram(d.reason(), from);
      return;
    }
    DatagramCodec.Accepted accepted = (DatagramCodec.Accepted) verdict;
    DatagramHeader h = accepted.header();
    byte[] body = accepted.body();
    if (faults.blocks(h.sender())) {
      drops.datagram("test_partition");
      return;
    }
    directory.heard(h.sender()); // authentic (the codec's verdict): its address is still good
    MessageType type = MessageType.forNumber(h.messageType());
    if (type == null || type == MessageType.MESSAGE_TYPE_UNKNOWN) {
      drops.datagram("unknown_type", from);
      return;
    }
    try {
      if (type == MessageType.TRANSPORT_PROBE) {
        boolean viaMulticast = packet.recipient() != null && packet.recipient().getAddress() != null
            && packet.recipient().getAddress().isMulticastAddress();
        probes.received(h.sender(), TransportProbe.parseFrom(body), viaMulticast); // the transport's own
        return;
      }
      if (type == MessageType.FRAGMENT) {
        onFragment(h, body, from);
        return;
      }
      Parser<? extends MessageLite> parser = PeerMessageParsers.parser(type);
      if (parser == null) {
        drops.datagram("unknown_type", from);
        return;
      }
      deliver(h, type, parser.parseFrom(body));
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      drops.datagram("malformed", from); // an authentic sender's bug or a forger's: either way nothing to act on
    }
  }

  /** A FRAGMENT's body is the original type's number followed by the Fragment (PeerTransport#send). */
  private void onFragment(DatagramHeader h, byte[] body, InetSocketAddress from)
      throws InvalidProtocolBufferException {
    if (body.length == 0) {
      drops.datagram("malformed", from);
      return;
    }
    MessageType inner = MessageType.forNumber(body[0] & 0xff);
    if (inner == null || inner == MessageType.FRAGMENT || PeerMessageParsers.parser(inner) == null) {
      drops.datagram("malformed", from);
      return;
    }
    Fragment f = Fragment.parser().parseFrom(body, 1, body.length - 1);
    byte[] whole = reassembler.add(h.sender(), h.view(), f);
    if (whole == null) {
      return;
    }
    deliver(h, inner, PeerMessageParsers.parser(inner).parseFrom(whole));
  }

  private void deliver(DatagramHeader h, MessageType type, MessageLite body) {
    if (!sink.offerPeer(h.sender(), h.view(), type, body)) {
      drops.datagram("queue_full");
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    log.atDebug().setCause(cause).log("peer channel error");
  }
}
