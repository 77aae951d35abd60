namespace Btrfs.Commands
{
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Colours for Show-ExtentMap's view (Btrfs.Format.ps1xml). The objects hold plain text; the view
    /// adds ANSI sequences here, and PowerShell's formatter keeps or drops them as
    /// $PSStyle.OutputRendering says: kept on a terminal, dropped in a file (>, Out-File), a pipe and
    /// Out-String under "Host"; always kept under "Ansi", never under "PlainText".
    /// </summary>
    public static class ExtentMapStyle
    {
        private const string Reset = "\u001b[0m";

        /// <summary>The line with colours: a cell's colour is its mark (green plain data, cyan shared, magenta compressed, blue unwritten, grey hole).</summary>
        public static string Ansi(object? line)
        {
            if (line is null)
            {
                return string.Empty;
            }

            // Live objects and the deserialized ones that come back from remoting alike.
            var o = System.Management.Automation.PSObject.AsPSObject(line);
            string text = o.Properties["Text"]?.Value as string ?? string.Empty;
            string marks = o.Properties["Marks"]?.Value as string ?? string.Empty;
            string kind = o.Properties["Kind"]?.Value?.ToString() ?? string.Empty;
            var sb = new StringBuilder(text.Length * 4);
            string? current = null;
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                string? code = kind switch
                {
                    nameof(ExtentMapLineKind.Cells) => c == ExtentPicture.Hole ? "90" : Mark(i < marks.Length ? marks[i] : ' '),
                    nameof(ExtentMapLineKind.Marks) => c == ' ' ? null : Mark(c),
                    nameof(ExtentMapLineKind.Legend) => LegendSymbol(text, i),
                    _ => null,
                };
                if (code != current)
                {
                    sb.Append(code is null ? Reset : "\u001b[" + code + "m");
                    current = code;
                }

                sb.Append(c);
            }

            if (current is not null)
            {
                sb.Append(Reset);
            }

            return sb.ToString();
        }

        private static string Mark(char mark) => mark switch
        {
            ExtentPicture.Shared => "36",
            ExtentPicture.Compressed => "35",
            ExtentPicture.Unwritten => "34",
            _ => "32",
        };

        /// <summary>In the legend, a symbol is a character standing alone before its description.</summary>
        private static string? LegendSymbol(string text, int i)
        {
            bool alone = (i == 0 || text[i - 1] == ' ') && i + 1 < text.Length && text[i + 1] == ' ';
            char c = text[i];
            return !alone ? null
                : c == ExtentPicture.Hole ? "90"
                : c is ExtentPicture.OneExtent or ExtentPicture.FewExtents or ExtentPicture.SomeExtents or ExtentPicture.ManyExtents or ExtentPicture.LittleData ? "32"
                : c is ExtentPicture.Shared or ExtentPicture.Compressed or ExtentPicture.Unwritten ? Mark(c)
                : null;
        }
    }
}
