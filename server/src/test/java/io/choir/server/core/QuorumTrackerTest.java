package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** QuorumTracker: commit by f+1 acknowledgements (VR Revisited 4.1), liveness and heartbeat rounds. */
class QuorumTrackerTest {
  private final QuorumTracker quorum = new QuorumTracker(CoreKit.config(1, 5),
      new Members(1, CoreKit.config(1, 5).bootstrapMembership()));

  @Test
  void shouldCommitWhatFPlusOneReplicasHavePersisted() {
    quorum.selfPersisted(10);
    assertTrue(quorum.ack(1, 8, 10));
    assertEquals(0, quorum.commit(true, 10), "two of five");
    assertTrue(quorum.ack(2, 6, 10));
    assertEquals(6, quorum.commit(true, 10));
    assertFalse(quorum.ack(2, 5, 10), "acks are cumulative");
    assertEquals(0, quorum.commit(false, 10), "its own copy counts only once its last normal view is durable");
  }

  @Test
  void shouldCountTheLiveReplicasWithinTheTimeout() {
    quorum.heardAll(0);
    quorum.heard(3, CoreKit.T);
    assertEquals(2, quorum.live(CoreKit.T + 1), "itself and replica at index 3");
  }

  @Test
  void shouldConfirmARoundOnceFBackupsAnsweredIt() {
    long round = quorum.nextRound();
    quorum.roundAnswered(1, round);
    assertEquals(0, quorum.confirmedRound());
    quorum.roundAnswered(4, round);
    assertEquals(round, quorum.confirmedRound());
  }
}
