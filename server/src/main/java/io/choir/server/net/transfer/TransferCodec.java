package io.choir.server.net.transfer;

import io.choir.proto.PeerEnvelope;
import io.choir.proto.wire.DatagramHeader;
import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.netty.channel.ChannelPipeline;

/**
 * TransferCodec is the wire codec of a state transfer connection, one for both ends (the fetching
 * {@code StateTransferClient} with its {@link StateTransferReceiver}, the serving
 * {@code StateTransferServer} with its {@link StateTransferSender}): length-prefixed frames, each one
 * {@link PeerEnvelope} (the request one way, StateTransferChunk envelopes the other), every envelope
 * stamped with the protocol version, the cluster id, the view and its sender, and refused by either end
 * when the version or cluster id is not its own. The frame limit is each end's own: the client's is
 * above the source's chunk size, the server's fits a request (or a peer stream's frame). The encoder
 * and the envelope decoder are stateless and shared by every connection of one end; the frame decoder
 * holds one connection's partial frame, so each gets its own.
 */
public final class TransferCodec {
  private final FrameEncoder encoder = new FrameEncoder();
  private final ProtobufFrameDecoder<PeerEnvelope> decoder = new ProtobufFrameDecoder<>(PeerEnvelope.parser());

  /**
   * Adds the codec's handlers to the end of pipeline, as "frames" (frames up to maxFrameBytes),
   * "decode" (frame to envelope) and "encode" (envelope to frame); the caller adds its handler after.
   */
  public ChannelPipeline addTo(ChannelPipeline pipeline, int maxFrameBytes) {
    return pipeline
        .addLast("frames", new FrameDecoder(maxFrameBytes))
        .addLast("decode", decoder)
        .addLast("encode", encoder);
  }

  /**
   * An envelope stamped as every state transfer envelope is (protocol version, cluster id, view,
   * sender); the caller sets the body (a request or a chunk) and builds it.
   */
  public static PeerEnvelope.Builder envelope(long clusterIdHash, long view, int sender) {
    return PeerEnvelope.newBuilder()
        .setProtocolVersion(DatagramHeader.PROTOCOL_VERSION)
        .setClusterId(clusterIdHash)
        .setView(view)
        .setSender(sender);
  }

  /** What is wrong with envelope's stamp (another protocol version or cluster id), or null. */
  public static String stampProblem(PeerEnvelope envelope, long clusterIdHash) {
    if (envelope.getProtocolVersion() != DatagramHeader.PROTOCOL_VERSION) {
      return "protocol version " + envelope.getProtocolVersion();
    }
    if (envelope.getClusterId() != clusterIdHash) {
      return "another cluster id " + Long.toHexString(envelope.getClusterId());
    }
    return null;
  }
}
