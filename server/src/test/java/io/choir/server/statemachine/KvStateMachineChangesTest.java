package io.choir.server.statemachine;

import static io.choir.server.statemachine.KvStateMachineTest.batch;
import static io.choir.server.statemachine.KvStateMachineTest.cas;
import static io.choir.server.statemachine.KvStateMachineTest.casAbsent;
import static io.choir.server.statemachine.KvStateMachineTest.del;
import static io.choir.server.statemachine.KvStateMachineTest.entriesFrom;
import static io.choir.server.statemachine.KvStateMachineTest.noop;
import static io.choir.server.statemachine.KvStateMachineTest.opCas;
import static io.choir.server.statemachine.KvStateMachineTest.opDelete;
import static io.choir.server.statemachine.KvStateMachineTest.opPut;
import static io.choir.server.statemachine.KvStateMachineTest.put;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.proto.Entry;
import io.choir.server.storage.MemoryStorage;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The changes the state machine reports to its {@link ChangeListener}: what watches deliver. */
class KvStateMachineChangesTest {
  private final List<String> heard = new ArrayList<>();
  private KvStateMachine sm;

  @BeforeEach
  void start() {
    sm = new KvStateMachine(new MemoryStorage(), 4, 3);
    sm.load();
    sm.changeListener(new ChangeListener() {
      @Override
      public void applied(List<Change> changes, long applied) {
        for (Change c : changes) {
          heard.add(c.revision() + " " + text(c.key()) + (c.deleted() ? " deleted" : "=" + text(c.value()))
              + (c.prevValue() == null ? "" : " was " + text(c.prevValue()) + "@" + c.prevVersion()));
        }
        heard.add("applied " + applied);
      }

      @Override
      public void replaced(long applied) {
        heard.add("replaced " + applied);
      }
    });
  }

  private void apply(Entry.Builder... commands) {
    sm.apply(entriesFrom(sm.applied() + 1, commands), true);
  }

  @Test
  void shouldReportEachEntrysChangesWithThePreviousValues() {
    apply(put(0, 1, "a", "1"), put(0, 2, "a", "2"), del(0, 3, "a"), del(0, 4, "absent"), noop());

    assertEquals(List.of("replaced 0", "1 a=1", "2 a=2 was 1@1", "3 a deleted was 2@2", "applied 5"), heard);
  }

  @Test
  void shouldReportABatchAsOneChangePerKeyAtOneRevisionAndAFailedOneAsNone() {
    apply(put(0, 1, "b", "old"));
    apply(batch(0, 2, opPut("a", "1"), opPut("b", "x"), opPut("a", "2"), opPut("c", "3"), opDelete("c")));
    apply(batch(0, 3, opPut("z", "1"), opCas(cas("b").setExpectedValue(KvStateMachineTest.bs("nope")))));
    apply(casAbsent(0, 4, "b", "again"), casAbsent(0, 5, "d", "new"));

    assertEquals(List.of("replaced 0", "1 b=old", "applied 1", "2 a=2", "2 b=x was old@1", "applied 2", "applied 3",
        "5 d=new", "applied 5"), heard);
  }

  @Test
  void shouldReportAnInstalledStateAsReplacedAtItsOp() {
    apply(put(0, 1, "a", "1"));
    sm.beginInstall();
    sm.installSnapshot(40, 1234, List.of());

    assertEquals(List.of("replaced 0", "1 a=1", "applied 1", "replaced 40"), heard);
  }

  private static String text(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }
}
