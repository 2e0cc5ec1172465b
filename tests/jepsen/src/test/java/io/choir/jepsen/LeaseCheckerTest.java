package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** LeaseCheckerTest: synthetic lease histories the lease checker must pass or catch (TTL 3 s). */
class LeaseCheckerTest {
  private static final long TTL = s(3);
  private static final List<LeaseChecker.Scan> CLEAN = List.of(new LeaseChecker.Scan("n1", List.of(), null));

  private static long s(double seconds) {
    return (long) (seconds * 1e9);
  }

  private static LeaseChecker.Alive ok(double send) {
    return new LeaseChecker.Alive(s(send), s(send + 0.01), Outcome.OK);
  }

  /** Lease 1: granted at 0, kept alive at 1 s and 2 s, then left to expire: safe until 5 s, deadline at most 5.01 s. */
  private static LeaseChecker.Life expiring() {
    return new LeaseChecker.Life(1, "lease/1", TTL, List.of(ok(0), ok(1), ok(2)), Outcome.OK, s(0.02), -1, -1, null);
  }

  /** Lease 2: granted at 0, revoked (acknowledged) over [1.5, 1.6] s. */
  private static LeaseChecker.Life revoked() {
    return new LeaseChecker.Life(2, "lease/2", TTL, List.of(ok(0)), Outcome.OK, s(0.02), s(1.5), s(1.6), Outcome.OK);
  }

  private static LeaseChecker.Read read(String key, double invoke, boolean present) {
    return new LeaseChecker.Read(key, s(invoke), s(invoke + 0.01), present);
  }

  private static List<LeaseChecker.Read> goodReads() {
    return new ArrayList<>(List.of(read("lease/1", 1, true), read("lease/1", 5.5, true), read("lease/1", 6.0, false),
        read("lease/2", 1.0, true), read("lease/2", 1.55, false), read("lease/2", 1.7, false)));
  }

  private static LeaseChecker.Result check(List<LeaseChecker.Read> reads, List<LeaseChecker.Fault> faults,
      List<LeaseChecker.Scan> scans) {
    LeaseChecker.Result r = LeaseChecker.check(List.of(expiring(), revoked()), reads, faults, scans);
    System.out.println(r.summary());
    return r;
  }

  @Test
  void aHistoryWithinTheBoundsPasses() {
    LeaseChecker.Result r = check(goodReads(), List.of(), CLEAN);
    assertEquals(Verdict.VALID, r.verdict(), r.problems().toString());
    assertEquals(6, r.reads());
    assertEquals(1, r.revoked());
    assertEquals(490, r.maxPresentPastUpperMs()); // seen at 5.5 s, deadline at most 5.01 s
  }

  @Test
  void anEarlyDeleteIsCaught() {
    List<LeaseChecker.Read> reads = goodReads();
    reads.add(read("lease/1", 4.0, false)); // the keep-alive sent at 2 s keeps it until 5 s
    LeaseChecker.Result r = check(reads, List.of(), CLEAN);
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("early")), r.problems().toString());
  }

  @Test
  void anAbsentReadBeforeThePutOrAfterARevokeIsNotEarly() {
    List<LeaseChecker.Read> reads = goodReads();
    reads.add(new LeaseChecker.Read("lease/1", s(0.0), s(0.015), false)); // invoked before the put was acknowledged
    reads.add(new LeaseChecker.Read("lease/2", s(1.4), s(1.55), false)); // completed after the revoke was sent
    assertEquals(Verdict.VALID, check(reads, List.of(), CLEAN).verdict());
  }

  @Test
  void aLateDeleteIsCaught() {
    List<LeaseChecker.Read> reads = goodReads();
    reads.add(read("lease/1", 7.0, true)); // deadline 5.01 s + 1.5 s
    LeaseChecker.Result r = check(reads, List.of(), CLEAN);
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("late")), r.problems().toString());
  }

  @Test
  void anOverlappingFaultWidensTheLateBound() {
    List<LeaseChecker.Read> reads = goodReads();
    reads.add(read("lease/1", 7.0, true));
    // a fault from 5 s to 8 s: allowed 1.5 + 3 + 1.5 s past 5.01 s
    assertEquals(Verdict.VALID, check(reads, List.of(new LeaseChecker.Fault(s(5), s(8))), CLEAN).verdict());
    // one that ended long before the deadline does not
    assertEquals(Verdict.INVALID, check(reads, List.of(new LeaseChecker.Fault(s(0), s(2))), CLEAN).verdict());
    reads.add(read("lease/1", 11.6, true)); // past even the widened bound (5.01 + 6 s)
    assertEquals(Verdict.INVALID, check(reads, List.of(new LeaseChecker.Fault(s(5), s(8))), CLEAN).verdict());
  }

  @Test
  void aKeySeenAfterItsAcknowledgedRevokeIsCaught() {
    List<LeaseChecker.Read> reads = goodReads();
    reads.add(read("lease/2", 1.65, true));
    LeaseChecker.Result r = check(reads, List.of(), CLEAN);
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("revoke was acknowledged")), r.problems().toString());
  }

  @Test
  void aKeyLeftOnAReplicaAtTheEndIsCaughtAndAnUnscannedReplicaIsUnknown() {
    List<LeaseChecker.Scan> left = List.of(new LeaseChecker.Scan("n1", List.of(), null),
        new LeaseChecker.Scan("n2", List.of("lease/1"), null));
    assertEquals(Verdict.INVALID, check(goodReads(), List.of(), left).verdict());
    List<LeaseChecker.Scan> unscanned = List.of(new LeaseChecker.Scan("n1", List.of(), null),
        new LeaseChecker.Scan("n2", List.of(), "timeout"));
    assertEquals(Verdict.UNKNOWN, check(goodReads(), List.of(), unscanned).verdict());
  }

  @Test
  void aKeepAliveOfUnknownOutcomeMovesTheDeadlineButNotTheSafeTime() {
    LeaseChecker.Life l = new LeaseChecker.Life(3, "lease/3", TTL,
        List.of(ok(0), new LeaseChecker.Alive(s(1), s(3), Outcome.INFO)), Outcome.OK, s(0.02), -1, -1, null);
    assertEquals(s(6), l.upper());
    // absent at 3.5 s: after the acknowledged grant's 3 s, so not early (the unknown keep-alive may not have applied)
    LeaseChecker.Result r = LeaseChecker.check(List.of(l), List.of(read("lease/3", 3.5, false), read("lease/3", 7.4, true)),
        List.of(), CLEAN);
    assertEquals(Verdict.VALID, r.verdict(), r.problems().toString());
  }
}
