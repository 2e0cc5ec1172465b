package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Response;
import io.choir.server.core.Effects.Apply;
import io.choir.server.core.Effects.Effect;
import io.choir.server.core.Effects.FetchState;
import io.choir.server.core.Effects.PauseIntake;
import io.choir.server.core.Effects.PeersChanged;
import io.choir.server.core.Effects.Persist;
import io.choir.server.core.Effects.PersistLastNormalView;
import io.choir.server.core.Effects.PersistView;
import io.choir.server.core.Effects.Read;
import io.choir.server.core.Effects.Reply;
import io.choir.server.core.Effects.Retransmit;
import io.choir.server.core.Effects.Send;
import io.choir.server.core.Effects.TruncateLogAfter;
import io.choir.server.core.Effects.TruncateLogBefore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * BurstMerge folds a burst's asks, handed to it in the order the core asked, into the effects to carry
 * out, in their order: the merge rules and the order Effects' class comment gives (and says why they
 * are right). One merge per {@link Effects#toExecute} call.
 */
final class BurstMerge implements Effects.Handler {
  private final long logEpoch;
  private final boolean caughtUp;
  private PersistView view;
  private TruncateLogAfter truncateAfter;
  private final List<Entry> persist = new ArrayList<>();
  private PersistLastNormalView lastNormalView;
  private final List<Send> sends = new ArrayList<>();
  private final List<Entry> apply = new ArrayList<>();
  private TruncateLogBefore truncateBefore;
  private final List<Retransmit> retransmits = new ArrayList<>();
  private FetchState fetch;
  private final List<Read> reads = new ArrayList<>();
  private final Map<Long, List<Response>> replies = new LinkedHashMap<>();
  private PauseIntake pause;
  private PeersChanged peers;

  /** logEpoch: the epoch of the burst's Persist; caughtUp: whether its last normal view clears the marker. */
  BurstMerge(long logEpoch, boolean caughtUp) {
    this.logEpoch = logEpoch;
    this.caughtUp = caughtUp;
  }

  @Override
  public void persistView(PersistView e) {
    view = e;
  }

  @Override
  public void truncateLogAfter(TruncateLogAfter e) {
    persist.removeIf(entry -> entry.getOp() > e.op());
    if (truncateAfter == null || e.op() < truncateAfter.op()) {
      truncateAfter = e;
    }
  }

  @Override
  public void persist(Persist e) {
    persist.addAll(e.entries());
  }

  @Override
  public void persistLastNormalView(PersistLastNormalView e) {
    lastNormalView = e;
  }

  @Override
  public void send(Send e) {
    sends.add(e);
  }

  @Override
  public void apply(Apply e) {
    apply.addAll(e.entries());
  }

  @Override
  public void truncateLogBefore(TruncateLogBefore e) {
    truncateBefore = e;
  }

  @Override
  public void retransmit(Retransmit e) {
    retransmits.add(e);
  }

  @Override
  public void fetchState(FetchState e) {
    fetch = e;
  }

  @Override
  public void read(Read e) {
    reads.add(e);
  }

  @Override
  public void reply(Reply e) {
    replies.computeIfAbsent(e.connectionId(), k -> new ArrayList<>()).addAll(e.responses());
  }

  @Override
  public void pauseIntake(PauseIntake e) {
    pause = e;
  }

  @Override
  public void peersChanged(PeersChanged e) {
    peers = e;
  }

  /** The merged effects in the order to carry them out. */
  List<Effect> inOrder() {
    List<Effect> out = new ArrayList<>(sends.size() + retransmits.size() + reads.size() + replies.size() + 8);
    addIfAsked(out, view);
    addIfAsked(out, truncateAfter);
    if (!persist.isEmpty()) {
      out.add(new Persist(persist, logEpoch));
    }
    if (lastNormalView != null) {
      out.add(new PersistLastNormalView(lastNormalView.lastNormalView(), caughtUp));
    }
    out.addAll(sends);
    if (!apply.isEmpty()) {
      out.add(new Apply(apply));
    }
    addIfAsked(out, truncateBefore);
    out.addAll(retransmits);
    addIfAsked(out, fetch);
    out.addAll(reads);
    replies.forEach((connectionId, responses) -> out.add(new Reply(connectionId, responses)));
    addIfAsked(out, pause);
    addIfAsked(out, peers);
    return Collections.unmodifiableList(out);
  }

  private static void addIfAsked(List<Effect> out, Effect e) {
    if (e != null) {
      out.add(e);
    }
  }
}
