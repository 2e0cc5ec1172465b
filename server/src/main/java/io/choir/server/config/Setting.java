package io.choir.server.config;

import java.util.function.Function;

/**
 * Setting is one named, documented server setting: its YAML key (snake_case), its command-line flag
 * (--kebab-case, derived), its default and a parser that validates a raw value (a YAML scalar, list or
 * the flag's string) and says why it refuses one.
 */
public record Setting<T>(String key, String description, T defaultValue, Function<Object, T> parser) {
  /** The command-line flag of this setting: --max-frame-bytes for max_frame_bytes. */
  public String flag() {
    return "--" + key.replace('_', '-');
  }

  /** Parses raw (already validated by type) or throws ConfigException naming this setting. */
  public T parse(Object raw) {
    try {
      return parser.apply(raw);
    } catch (ConfigException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new ConfigException(key, e.getMessage());
    }
  }
}
