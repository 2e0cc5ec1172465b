package io.choir.client;

import java.util.concurrent.Flow;
import java.util.function.BiFunction;

/**
 * WatchPublisher is a watch as a {@link Flow.Publisher} ({@link ChoirClient#watchPublisher}): each
 * subscriber gets a watch of its own, started on subscribe. It honours demand: without demand the
 * watch thread waits, its connection stops being read, and the watch resumes later from the last event
 * delivered (so a slow subscriber costs no memory and loses nothing). cancel closes the watch; an error
 * that ends it ({@link WatchListener#onError}) is onError; a watch never completes by itself.
 */
final class WatchPublisher implements Flow.Publisher<WatchEvent> {
  private final BiFunction<WatchOptions, WatchListener, Watch> start;
  private final WatchOptions options;

  WatchPublisher(BiFunction<WatchOptions, WatchListener, Watch> start, WatchOptions options) {
    this.start = start;
    this.options = options;
  }

  @Override
  public void subscribe(Flow.Subscriber<? super WatchEvent> subscriber) {
    Subscription s = new Subscription(subscriber);
    subscriber.onSubscribe(s);
    Watch watch = start.apply(options, s);
    s.started(watch);
  }

  /** One subscriber's watch: the demand, and the listener that waits for it. */
  private static final class Subscription implements Flow.Subscription, WatchListener {
    private final Flow.Subscriber<? super WatchEvent> subscriber;
    private long demand;
    private boolean cancelled;
    private Watch watch;

    Subscription(Flow.Subscriber<? super WatchEvent> subscriber) {
      this.subscriber = subscriber;
    }

    synchronized void started(Watch w) {
      watch = w;
      if (cancelled) {
        w.close();
      }
    }

    @Override
    public void request(long n) {
      if (n <= 0) {
        cancel();
        subscriber.onError(new IllegalArgumentException("request(" + n + "): demand must be positive (rule 3.9)"));
        return;
      }
      synchronized (this) {
        demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
        notifyAll();
      }
    }

    @Override
    public void cancel() {
      Watch w;
      synchronized (this) {
        cancelled = true;
        w = watch;
        notifyAll();
      }
      if (w != null) {
        w.close();
      }
    }

    @Override
    public void onEvent(WatchEvent event) {
      synchronized (this) {
        while (demand == 0 && !cancelled) {
          try {
            wait();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return; // the watch is closing
          }
        }
        if (cancelled) {
          return;
        }
        demand--;
      }
      subscriber.onNext(event);
    }

    @Override
    public void onError(ChoirException error) {
      synchronized (this) {
        if (cancelled) {
          return;
        }
        cancelled = true;
      }
      subscriber.onError(error);
    }
  }
}
