package io.choir.cli;

import java.io.PrintStream;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.slf4j.ILoggerFactory;
import org.slf4j.IMarkerFactory;
import org.slf4j.Logger;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.BasicMarkerFactory;
import org.slf4j.helpers.LegacyAbstractLogger;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.helpers.NOPMDCAdapter;
import org.slf4j.spi.MDCAdapter;
import org.slf4j.spi.SLF4JServiceProvider;

/**
 * CliLogging is the SLF4J provider of a CLI call: one line on stderr per warning or error of the client
 * library ("choir: warning: ..."), nothing below unless {@code -Dchoir.cli.log=debug|info} asks for it,
 * and none of logback's start-up (configuration parsing, appenders), which costs a short-lived process
 * more than its whole request. It is not registered as a service, so it never competes with logback in
 * the server: the launcher picks it for the client commands with
 * {@code -Dslf4j.provider=io.choir.cli.CliLogging}.
 */
public final class CliLogging implements SLF4JServiceProvider {
  /** The system property that sets the lowest level printed (default warn). */
  public static final String LEVEL_PROPERTY = "choir.cli.log";

  private final BasicMarkerFactory markers = new BasicMarkerFactory();
  private final NOPMDCAdapter mdc = new NOPMDCAdapter();
  private Factory factory;

  @Override
  public ILoggerFactory getLoggerFactory() {
    return factory;
  }

  @Override
  public IMarkerFactory getMarkerFactory() {
    return markers;
  }

  @Override
  public MDCAdapter getMDCAdapter() {
    return mdc;
  }

  @Override
  public String getRequestedApiVersion() {
    return "2.0.99";
  }

  @Override
  public void initialize() {
    factory = new Factory(threshold(System.getProperty(LEVEL_PROPERTY)), System.err);
  }

  /** The lowest level printed for a property value; warn for null or an unknown name. */
  static Level threshold(String name) {
    if (name == null) {
      return Level.WARN;
    }
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "error" -> Level.ERROR;
      case "info" -> Level.INFO;
      case "debug" -> Level.DEBUG;
      case "trace" -> Level.TRACE;
      default -> Level.WARN;
    };
  }

  /** Factory hands out one {@link CliLogger} per name, all printing to one stream. */
  static final class Factory implements ILoggerFactory {
    private final ConcurrentMap<String, Logger> loggers = new ConcurrentHashMap<>();
    private final Level threshold;
    private final PrintStream err;

    Factory(Level threshold, PrintStream err) {
      this.threshold = threshold;
      this.err = err;
    }

    @Override
    public Logger getLogger(String name) {
      return loggers.computeIfAbsent(name, n -> new CliLogger(n, threshold, err));
    }
  }

  /**
   * CliLogger prints "choir: LEVEL: message" and, for a throwable, its one-line description (no stack
   * trace: the CLI's user wants the reason). Key-value pairs of the fluent API come before the message,
   * as SLF4J merges them for a logger of this kind.
   */
  static final class CliLogger extends LegacyAbstractLogger {
    private static final long serialVersionUID = 1L;
    private final transient Level threshold;
    private final transient PrintStream err;

    CliLogger(String name, Level threshold, PrintStream err) {
      this.name = name;
      this.threshold = threshold;
      this.err = err;
    }

    private boolean enabled(Level level) {
      return level.toInt() >= threshold.toInt();
    }

    @Override
    public boolean isTraceEnabled() {
      return enabled(Level.TRACE);
    }

    @Override
    public boolean isDebugEnabled() {
      return enabled(Level.DEBUG);
    }

    @Override
    public boolean isInfoEnabled() {
      return enabled(Level.INFO);
    }

    @Override
    public boolean isWarnEnabled() {
      return enabled(Level.WARN);
    }

    @Override
    public boolean isErrorEnabled() {
      return enabled(Level.ERROR);
    }

    @Override
    protected String getFullyQualifiedCallerName() {
      return null;
    }

    @Override
    protected void handleNormalizedLoggingCall(Level level, Marker marker, String messagePattern, Object[] arguments,
        Throwable throwable) {
      if (!enabled(level)) {
        return;
      }
      StringBuilder line = new StringBuilder("choir: ").append(level.toString().toLowerCase(Locale.ROOT)).append(": ")
          .append(MessageFormatter.basicArrayFormat(messagePattern, arguments));
      if (throwable != null) {
        line.append(": ").append(throwable);
      }
      err.println(line);
    }
  }
}
