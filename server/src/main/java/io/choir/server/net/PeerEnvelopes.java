package io.choir.server.net;

import com.google.protobuf.MessageLite;
import io.choir.proto.DoViewChange;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import io.choir.proto.wire.DatagramHeader;

/**
 * PeerEnvelopes maps a peer message (type and body, as the core sends and receives it) to the
 * PeerEnvelope that carries it over a TCP peer stream, and back. Pure and static (the simulator's
 * stream carries the same envelopes). Only the core's messages travel on a peer stream: state
 * transfer bodies have their own connections, and a FRAGMENT exists only on UDP.
 */
public final class PeerEnvelopes {
  private PeerEnvelopes() {}

  /**
   * The envelope of body (of type) from sender in view.
   *
   * @throws IllegalArgumentException when type is not a message of the core, or body is not of type
   */
  public static PeerEnvelope wrap(
      long clusterIdHash, int sender, long view, MessageType type, MessageLite body) {
    PeerEnvelope.Builder b =
        PeerEnvelope.newBuilder()
            .setProtocolVersion(DatagramHeader.PROTOCOL_VERSION)
            .setClusterId(clusterIdHash)
            .setView(view)
            .setSender(sender);
    try {
      switch (type) {
        case PREPARE -> b.setPrepare((Prepare) body);
        case PREPARE_OK -> b.setPrepareOk((PrepareOk) body);
        case HEARTBEAT -> b.setHeartbeat((Heartbeat) body);
        case HEARTBEAT_OK -> b.setHeartbeatOk((HeartbeatOk) body);
        case NACK -> b.setNack((Nack) body);
        case START_VIEW_CHANGE -> b.setStartViewChange((StartViewChange) body);
        case DO_VIEW_CHANGE -> b.setDoViewChange((DoViewChange) body);
        case START_VIEW -> b.setStartView((StartView) body);
        case RECOVERY -> b.setRecovery((Recovery) body);
        case RECOVERY_RESPONSE -> b.setRecoveryResponse((RecoveryResponse) body);
        case PRE_VIEW_CHANGE -> b.setPreViewChange((PreViewChange) body);
        case PRE_VIEW_CHANGE_OK -> b.setPreViewChangeOk((PreViewChangeOk) body);
        default -> throw new IllegalArgumentException("not a peer stream message: " + type);
      }
    } catch (ClassCastException e) {
      throw new IllegalArgumentException(
          "a " + type + " body must not be a " + body.getClass().getSimpleName(), e);
    }
    return b.build();
  }

  /**
   * The core message type envelope carries, or null when it carries none (no body, a body this
   * version does not know, a state transfer body or a fragment).
   */
  public static MessageType type(PeerEnvelope envelope) {
    return switch (envelope.getBodyCase()) {
      case PREPARE -> MessageType.PREPARE;
      case PREPARE_OK -> MessageType.PREPARE_OK;
      case HEARTBEAT -> MessageType.HEARTBEAT;
      case HEARTBEAT_OK -> MessageType.HEARTBEAT_OK;
      case NACK -> MessageType.NACK;
      case START_VIEW_CHANGE -> MessageType.START_VIEW_CHANGE;
      case DO_VIEW_CHANGE -> MessageType.DO_VIEW_CHANGE;
      case START_VIEW -> MessageType.START_VIEW;
      case RECOVERY -> MessageType.RECOVERY;
      case RECOVERY_RESPONSE -> MessageType.RECOVERY_RESPONSE;
      case PRE_VIEW_CHANGE -> MessageType.PRE_VIEW_CHANGE;
      case PRE_VIEW_CHANGE_OK -> MessageType.PRE_VIEW_CHANGE_OK;
      default -> null;
    };
  }

  /** The body of envelope, or null when {@link #type} is null. */
  public static MessageLite body(PeerEnvelope envelope) {
    return switch (envelope.getBodyCase()) {
      case PREPARE -> envelope.getPrepare();
      case PREPARE_OK -> envelope.getPrepareOk();
      case HEARTBEAT -> envelope.getHeartbeat();
      case HEARTBEAT_OK -> envelope.getHeartbeatOk();
      case NACK -> envelope.getNack();
      case START_VIEW_CHANGE -> envelope.getStartViewChange();
      case DO_VIEW_CHANGE -> envelope.getDoViewChange();
      case START_VIEW -> envelope.getStartView();
      case RECOVERY -> envelope.getRecovery();
      case RECOVERY_RESPONSE -> envelope.getRecoveryResponse();
      case PRE_VIEW_CHANGE -> envelope.getPreViewChange();
      case PRE_VIEW_CHANGE_OK -> envelope.getPreViewChangeOk();
      default -> null;
    };
  }
}
