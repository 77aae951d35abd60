namespace Btrfs.Commands
{
    using System;
    using System.Collections;
    using System.Collections.Generic;
    using System.Text;
    using Btrfs.Kernel;

    /// <summary>
    /// Text for the table views (Btrfs.Format.ps1xml): a reason column wrapped on words at the column's
    /// width, one rule per line, because PowerShell's own table wrap breaks words wherever the column ends.
    /// </summary>
    public static class TextLayout
    {
        /// <summary>
        /// A file name wrapped at its spaces as <see cref="Wrap"/> does, where that keeps every character: a name with
        /// spaces at either end or two in a row is left whole (the table wraps it at the column's edge), since wrapping at
        /// spaces would drop them and show two files alike (a review).
        /// </summary>
        public static string WrapName(string? name, int width) =>
            name is null || name.StartsWith(' ') || name.EndsWith(' ') || name.Contains("  ", StringComparison.Ordinal) ? name ?? string.Empty : Wrap(name, width);

        /// <summary>
        /// A byte offset or address to the byte, with thousands separators where that fits <paramref name="width"/>
        /// characters, else without them (so a sparse image's offsets past 1 TB stay on one line of an 80-column table
        /// instead of being cut in two: a hostile review); one past even that (10^15 bytes and more in a 15-wide column, 10^17 in a 17-wide one: far into a sparse file) is
        /// shown in units, marked approximate ("~4.00 EiB"; the property holds it to the byte), not cut in two and read
        /// as two numbers (a hostile test).
        /// </summary>
        public static string Offset(long value, int width)
        {
            string grouped = value.ToString("N0", System.Globalization.CultureInfo.CurrentCulture);
            string plain = value.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return grouped.Length <= width ? grouped : plain.Length <= width ? plain : "~" + Btrfs.Core.SizeFormatter.Format(value);
        }

        /// <summary>
        /// <paramref name="value"/> (a string, or strings: one rule each) wrapped at spaces into lines of
        /// at most <paramref name="width"/> characters (a longer word is cut), joined by newlines.
        /// </summary>
        public static string Wrap(object? value, int width)
        {
            var lines = new List<string>();
            foreach (string text in Texts(value))
            {
                lines.AddRange(Btrfs.Core.TextWrap.Lines(text, width));
            }

            return string.Join('\n', lines);
        }

        private static IEnumerable<string> Texts(object? value)
        {
            value = value is System.Management.Automation.PSObject p ? p.BaseObject : value;
            if (value is string s)
            {
                yield return s;
            }
            else if (value is IEnumerable many)
            {
                foreach (object? item in many)
                {
                    if (item?.ToString() is { Length: > 0 } t)
                    {
                        yield return t;
                    }
                }
            }
            else if (value?.ToString() is { Length: > 0 } other)
            {
                yield return other;
            }
        }
    }
}
