package io.choir.server.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * RequestTimesTest: the per-connection table of request start times against a HashMap, on random
 * starts and answers (ids colliding in the table, answers in any order, unknown ids), and the latency
 * each answer records.
 */
class RequestTimesTest {
  private static Request put(long id) {
    return Request.newBuilder().setRequestId(id).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k"))).build();
  }

  private static Request get(long id) {
    return Request.newBuilder().setRequestId(id).setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("k"))).build();
  }

  private static Response reply(long id, Status status) {
    return Response.newBuilder().setRequestId(id).setStatus(status).build();
  }

  @Test
  void shouldMatchAMapUnderRandomStartsAndAnswers() {
    long seed = new SplittableRandom().nextLong();
    System.out.println("RequestTimesTest seed " + seed);
    SplittableRandom random = new SplittableRandom(seed);
    MeterRegistry registry = new SimpleMeterRegistry();
    RequestTimes times = new RequestTimes(new ClientLatency(registry));
    Map<Long, Long> model = new HashMap<>();
    Map<Long, Boolean> isWrite = new HashMap<>();
    long writes = 0;
    long reads = 0;
    long writeNanos = 0;
    for (int step = 0; step < 200_000; step++) {
      long now = step * 10L;
      if (random.nextInt(3) != 0 || model.isEmpty()) {
        long id = 1 + random.nextLong(5_000); // few ids: collisions, reuse, growth and shrinking
        boolean write = random.nextBoolean();
        times.started(write ? put(id) : get(id), now);
        model.put(id, now);
        isWrite.put(id, write);
      } else {
        List<Response> replies = new ArrayList<>();
        for (int i = random.nextInt(1, 4); i > 0; i--) {
          long id = 1 + random.nextLong(5_000);
          replies.add(reply(id, Status.OK));
        }
        for (Response r : replies) {
          Long start = model.remove(r.getRequestId());
          if (start != null) {
            if (isWrite.get(r.getRequestId())) {
              writes++;
              writeNanos += now - start;
            } else {
              reads++;
            }
          }
        }
        times.finished(replies, now);
      }
      assertEquals(model.size(), times.size(), "seed " + seed + " step " + step);
    }
    assertEquals(writes, registry.timer("choir.client.write", "outcome", "ok").count(), "seed " + seed);
    assertEquals(reads, registry.timer("choir.client.read", "outcome", "ok").count(), "seed " + seed);
    assertEquals(writeNanos, (long) registry.timer("choir.client.write", "outcome", "ok")
        .totalTime(TimeUnit.NANOSECONDS), "seed " + seed);
  }

  @Test
  void shouldTimeRefusalsApartAndIgnoreOtherRequests() {
    MeterRegistry registry = new SimpleMeterRegistry();
    RequestTimes times = new RequestTimes(new ClientLatency(registry));
    times.started(put(1), 0);
    times.started(Request.newBuilder().setRequestId(2).build(), 0); // no op: not timed
    times.started(put(0), 0); // id 0: not timed
    assertEquals(1, times.size());
    times.finished(List.of(reply(1, Status.BUSY), reply(2, Status.OK)), 5);
    assertEquals(1, registry.timer("choir.client.write", "outcome", "refused").count());
    assertEquals(0, registry.timer("choir.client.write", "outcome", "ok").count());
    assertEquals(0, times.size());
  }
}
