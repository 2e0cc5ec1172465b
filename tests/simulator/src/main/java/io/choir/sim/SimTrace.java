package io.choir.sim;

import com.google.protobuf.MessageLite;
import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Prepare;
import io.choir.proto.StartView;
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
    } else if (m instanceof DoViewChange d) {
      s = "lnv=" + d.getLastNormalView() + " last=" + d.getLastOp() + " commit=" + d.getCommit();
    } else if (m instanceof StartView sv) {
      s = "last=" + sv.getLastOp() + " commit=" + sv.getCommit();
    }
    return s.length() > 100 ? s.substring(0, 100) : s;
  }

  /** The burst's effects in the order they are carried out. */
  static String describe(Effects fx) {
    StringBuilder sb = new StringBuilder();
    Effects.Handler describer = new Effects.Handler() {
      @Override
      public void persistView(Effects.PersistView e) {
        sb.append("view ").append(e.view()).append("; ");
      }

      @Override
      public void truncateLogAfter(Effects.TruncateLogAfter e) {
        sb.append("truncAfter ").append(e.op()).append("; ");
      }

      @Override
      public void persist(Effects.Persist e) {
        sb.append("persist ").append(range(e.entries())).append(" e").append(e.epoch()).append("; ");
      }

      @Override
      public void persistLastNormalView(Effects.PersistLastNormalView e) {
        sb.append("lnv ").append(e.lastNormalView()).append(e.caughtUp() ? " caught up" : "").append("; ");
      }

      @Override
      public void send(Effects.Send s) {
        sb.append("send ").append(s.type()).append(" to ").append(s.to()).append(" v").append(s.view())
            .append(" [").append(brief(s.body())).append("]; ");
      }

      @Override
      public void apply(Effects.Apply e) {
        sb.append("apply ").append(range(e.entries())).append("; ");
      }

      @Override
      public void truncateLogBefore(Effects.TruncateLogBefore e) {
        sb.append("truncBefore ").append(e.op()).append("; ");
      }

      @Override
      public void retransmit(Effects.Retransmit r) {
        sb.append("resend ").append(r.fromOp()).append("..").append(r.toOp()).append(" to ").append(r.to()).append("; ");
      }

      @Override
      public void fetchState(Effects.FetchState e) {
        sb.append("state transfer from ").append(e.from()).append("; ");
      }

      @Override
      public void read(Effects.Read e) {
        sb.append("read on ").append(e.connectionId()).append("; ");
      }

      @Override
      public void reply(Effects.Reply e) {
        sb.append(e.responses().size()).append(" replies on ").append(e.connectionId()).append("; ");
      }

      @Override
      public void pauseIntake(Effects.PauseIntake e) {
        sb.append(e.paused() ? "pause intake; " : "resume intake; ");
      }

      @Override
      public void peersChanged(Effects.PeersChanged e) {
        sb.append("peers ").append(e.membership()).append("; ");
      }
    };
    for (Effects.Effect e : fx.toExecute()) {
      e.carryOut(describer);
    }
    return sb.toString();
  }

  private static String range(List<Entry> entries) {
    return entries.get(0).getOp() + ".." + entries.get(entries.size() - 1).getOp();
  }
}
