package io.choir.sim;

import com.google.protobuf.MessageLite;
import io.choir.proto.Prepare;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import io.choir.server.core.ReplicaCore;
import java.util.List;

/** SimTrace prints a run burst by burst with -Dchoir.sim.trace=true (to read a failing seed). */
final class SimTrace {
  private SimTrace() {}

  static void burst(long nowNs, int node, List<Event> events, Effects fx, ReplicaCore core) {
    if (events.isEmpty() && fx.isEmpty()) {
      return;
    }
    StringBuilder sb = new StringBuilder(String.format("%9.3f n%d", nowNs / 1e6, node));
    for (Event e : events) {
      sb.append("\n            <- ").append(describe(e));
    }
    sb.append("\n            -> ").append(describe(fx)).append("\n            ").append(core);
    System.out.println(sb);
  }

  static String describe(Event e) {
    if (e instanceof Event.Peer p) {
      return "peer(from " + p.from() + ", v" + p.view() + ", " + p.type() + " " + brief(p.body()) + ")";
    }
    if (e instanceof Event.ClientRequest c) {
      return "client(" + c.request().getOpCase() + " rid=" + c.request().getRequestId() + ")";
    }
    if (e instanceof Event.Applied a) {
      return "applied(" + a.firstOp() + ".." + a.op() + ")";
    }
    return e.toString().length() > 120 ? e.toString().substring(0, 120) : e.toString();
  }

  private static String brief(MessageLite m) {
    String s = m.toString().replace("\n", " ");
    if (m instanceof Prepare p) {
      s = "first=" + p.getFirstOp() + " n=" + p.getEntriesCount() + " commit=" + p.getCommit();
    } else if (m instanceof io.choir.proto.DoViewChange d) {
      s = "lnv=" + d.getLastNormalView() + " last=" + d.getLastOp() + " commit=" + d.getCommit();
    } else if (m instanceof io.choir.proto.StartView sv) {
      s = "last=" + sv.getLastOp() + " commit=" + sv.getCommit();
    }
    return s.length() > 100 ? s.substring(0, 100) : s;
  }

  static String describe(Effects fx) {
    StringBuilder sb = new StringBuilder();
    if (!fx.persist.isEmpty()) {
      sb.append("persist ").append(fx.persist.get(0).getOp()).append("..")
          .append(fx.persist.get(fx.persist.size() - 1).getOp()).append(" e").append(fx.logEpoch).append("; ");
    }
    if (!fx.apply.isEmpty()) {
      sb.append("apply ").append(fx.apply.get(0).getOp()).append("..")
          .append(fx.apply.get(fx.apply.size() - 1).getOp()).append("; ");
    }
    if (fx.truncateLogAfter >= 0) {
      sb.append("truncAfter ").append(fx.truncateLogAfter).append("; ");
    }
    if (fx.truncateLogBefore > 0) {
      sb.append("truncBefore ").append(fx.truncateLogBefore).append("; ");
    }
    if (fx.persistView) {
      sb.append("view ").append(fx.view).append("; ");
    }
    if (fx.persistLastNormalView) {
      sb.append("lnv ").append(fx.lastNormalView).append(fx.caughtUp ? " caught up" : "").append("; ");
    }
    for (Effects.Send s : fx.sends) {
      sb.append("send ").append(s.type()).append(" to ").append(s.to()).append(" v").append(s.view())
          .append(" [").append(brief(s.body())).append("]; ");
    }
    if (fx.stateTransferFrom > 0) {
      sb.append("state transfer from ").append(fx.stateTransferFrom).append("; ");
    }
    if (!fx.replies.isEmpty()) {
      sb.append(fx.replies.size()).append(" replies; ");
    }
    return sb.toString();
  }
}
