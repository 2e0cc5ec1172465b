package io.choir.server.config;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Setting is the one declaration of one server setting: its YAML key (snake_case), its default, the
 * values it accepts ({@link Range}, as data), its unit, a one-line meaning, and whether only tests set
 * it. Everything else is derived from it: the command-line flag (--kebab-case), the parser that
 * validates a raw value (a YAML scalar, a YAML list or the flag's string) and says why it refuses one,
 * the line of `--print-config` and the row of the README's settings table.
 */
public record Setting<T>(String key, T defaultValue, Range range, Unit unit, String description,
    boolean testOnly, Function<Object, T> parser) {

  /** A whole number in min..max. */
  static Setting<Integer> whole(String key, int defaultValue, int min, int max, Unit unit, String description) {
    Range.Whole range = new Range.Whole(min, max, null);
    return new Setting<>(key, defaultValue, range, unit, description, false, v -> Values.whole(v, range));
  }

  /** A whole number in min..max, or 0 meaning zeroMeans. */
  static Setting<Integer> wholeOrZero(String key, int defaultValue, int min, int max, String zeroMeans, Unit unit,
      String description) {
    Range.Whole range = new Range.Whole(min, max, zeroMeans);
    return new Setting<>(key, defaultValue, range, unit, description, false, v -> Values.whole(v, range));
  }

  /** true or false. */
  static Setting<Boolean> bool(String key, boolean defaultValue, String description) {
    return new Setting<>(key, defaultValue, new Range.Bool(), Unit.NONE, description, false, Values::bool);
  }

  /** Free text, possibly empty (trimmed). */
  static Setting<String> text(String key, String defaultValue, String description) {
    return new Setting<>(key, defaultValue, new Range.Text(true), Unit.NONE, description, false, Values::string);
  }

  /** Free text that must not be empty (trimmed). */
  static Setting<String> nonEmptyText(String key, String defaultValue, String description) {
    return new Setting<>(key, defaultValue, new Range.Text(false), Unit.NONE, description, false,
        Values::nonEmptyString);
  }

  /** One of the words allowed, kept in lower case. */
  static Setting<String> oneOf(String key, String defaultValue, List<String> allowed, String description) {
    Range.OneOf range = new Range.OneOf(allowed);
    return new Setting<>(key, defaultValue, range, Unit.NONE, description, false, v -> Values.oneOf(v, range));
  }

  /** One of the constants of an enum, written in lower case. */
  static <E extends Enum<E>> Setting<E> oneOf(String key, Class<E> type, E defaultValue, String description) {
    Range.OneOf range = new Range.OneOf(Arrays.stream(type.getEnumConstants())
        .map(e -> e.name().toLowerCase(Locale.ROOT)).toList());
    return new Setting<>(key, defaultValue, range, Unit.NONE, description, false,
        v -> Enum.valueOf(type, Values.oneOf(v, range).toUpperCase(Locale.ROOT)));
  }

  /** A structured value (form describes it) that parser checks. */
  static <T> Setting<T> form(String key, T defaultValue, String form, Function<Object, T> parser, String description) {
    return new Setting<>(key, defaultValue, new Range.Form(form), Unit.NONE, description, false, parser);
  }

  /** This setting, marked as one that only tests set (fault injection, deliberate bugs). */
  Setting<T> forTestsOnly() {
    return new Setting<>(key, defaultValue, range, unit, description, true, parser);
  }

  /** The command-line flag of this setting: --max-frame-bytes for max_frame_bytes. */
  public String flag() {
    return "--" + key.replace('_', '-');
  }

  /** Parses raw or throws ConfigException naming this setting and saying why. */
  public T parse(Object raw) {
    try {
      return parser.apply(raw);
    } catch (ConfigException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new ConfigException(key, e.getMessage());
    }
  }

  /**
   * The flag's help text: the meaning, then the accepted values, the unit and the default
   * ("... (576..65000 bytes; default: 1400)").
   */
  public String help() {
    String shown = show(defaultValue);
    String accepted = range.describe().replace("`", "") + (unit == Unit.NONE ? "" : " " + unit.symbol());
    return description + " (" + accepted + "; default: " + (shown.isEmpty() ? "empty" : shown) + ")";
  }

  /** value as a person writes it in YAML or a flag: lists joined by commas, enums in lower case. */
  public String show(Object value) {
    if (value instanceof List<?> list) {
      return list.stream().map(String::valueOf).collect(Collectors.joining(","));
    }
    return value instanceof Enum<?> e ? e.name().toLowerCase(Locale.ROOT) : String.valueOf(value);
  }
}
