package io.choir.examples;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.Watch;
import io.choir.client.WatchEvent;
import io.choir.client.WatchListener;
import io.choir.client.WatchOptions;
import java.io.PrintStream;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * WatchExample follows a configuration prefix as it changes: a watch of every key under
 * {@code examples/config/}, from the revision after the first write, with previous values. Each change
 * arrives once, in revision order, on the watch's own thread; the watch resumes by itself after a lost
 * connection or a failover, from the revision after the last one it delivered. A start older than the
 * replicas keep would end it with WatchCompactedException (to onError).
 */
public final class WatchExample {
  private WatchExample() {}

  public static void main(String[] args) throws InterruptedException {
    try (ChoirClient client = ChoirClient.builder().endpoints(Endpoints.of(args)).build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) throws InterruptedException {
    long first = client.put("examples/config/color", "red");
    CountDownLatch three = new CountDownLatch(3);
    WatchListener print = new WatchListener() {
      @Override
      public void onEvent(WatchEvent e) {
        out.println("watch: " + e.revision() + " " + e.kind() + " " + e.keyAsString()
            + (e.kind() == WatchEvent.Kind.PUT ? " = " + e.valueAsString() : "")
            + " (was " + (e.prevValue() == null ? "absent" : e.prevValueAsString()) + ")");
        three.countDown();
      }

      @Override
      public void onError(ChoirException error) {
        out.println("watch ended: " + error.getMessage());
      }
    };
    try (Watch watch = client.watch(WatchOptions.prefix("examples/config/").fromRevision(first + 1).withPrevValue(),
        print)) {
      client.put("examples/config/color", "blue");
      client.put("examples/config/size", "large");
      client.delete("examples/config/color");
      if (!three.await(10, TimeUnit.SECONDS)) {
        out.println("watch: not every change arrived within 10 s");
      }
      out.println("next revision " + watch.nextRevision());
    }
  }
}
