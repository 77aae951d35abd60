namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Text;

    /// <summary>Text wrapped at spaces into lines of a width (a word longer than the width is cut): the table views' reasons and Show-ExtentMap's summary.</summary>
    internal static class TextWrap
    {
        /// <summary>The lines of <paramref name="text"/> wrapped at spaces at <paramref name="width"/> characters (at least 8).</summary>
        internal static List<string> Lines(string text, int width) => Lines(text.Split(' ', StringSplitOptions.RemoveEmptyEntries), width);

        /// <summary>
        /// <paramref name="words"/> joined by spaces into lines of at most <paramref name="width"/> characters (at least
        /// 8), each word kept whole on one line unless it is longer than a line ("12.7 KiB" as one word: never broken
        /// between the number and its unit).
        /// </summary>
        internal static List<string> Lines(IEnumerable<string> words, int width)
        {
            width = Math.Max(8, width);
            var lines = new List<string>();
            var line = new StringBuilder();
            foreach (string word in words)
            {
                string rest = word;
                while (rest.Length > 0)
                {
                    int room = line.Length == 0 ? width : width - line.Length - 1;
                    if (rest.Length <= room)
                    {
                        line.Append(line.Length == 0 ? string.Empty : " ").Append(rest);
                        rest = string.Empty;
                    }
                    else if (line.Length > 0)
                    {
                        lines.Add(line.ToString());
                        line.Clear();
                    }
                    else
                    {
                        // A word longer than the line, cut at the width but never between the two halves of a
                        // surrogate pair (an emoji in a file name would show as two replacement characters).
                        int cut = char.IsHighSurrogate(rest[width - 1]) && char.IsLowSurrogate(rest[width]) ? width - 1 : width;
                        lines.Add(rest[..cut]);
                        rest = rest[cut..];
                    }
                }
            }

            if (line.Length > 0)
            {
                lines.Add(line.ToString());
            }

            return lines;
        }
    }
}
