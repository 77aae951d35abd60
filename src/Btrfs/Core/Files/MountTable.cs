namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text;
    using Btrfs.Kernel;

    /// <summary>One line of /proc/self/mountinfo (proc(5)).</summary>
    internal sealed record MountEntry(
        ulong MountId,
        uint Major,
        uint Minor,
        string Root,
        string MountPoint,
        string MountOptions,
        string FileSystemType,
        string Source,
        string SuperOptions)
    {
        /// <summary>The option (per-mount or superblock), e.g. "ro", "nodatacow", or the value of "compress=zstd:3" for "compress".</summary>
        internal string? Option(string name)
        {
            foreach (string list in new[] { MountOptions, SuperOptions })
            {
                foreach (string o in list.Split(','))
                {
                    int eq = o.IndexOf('=');
                    string key = eq < 0 ? o : o[..eq];
                    if (key == name)
                    {
                        return eq < 0 ? string.Empty : o[(eq + 1)..];
                    }
                }
            }

            return null;
        }

        internal bool HasOption(string name) => Option(name) is not null;

        /// <summary>The compression mount option ("compress=zstd:3", "compress-force=lzo"), or null.</summary>
        internal string? CompressOption =>
            Option("compress-force") is string f ? "compress-force" + (f.Length > 0 ? "=" + f : string.Empty)
            : Option("compress") is string c ? "compress" + (c.Length > 0 ? "=" + c : string.Empty)
            : null;
    }

    /// <summary>A snapshot of /proc/self/mountinfo.</summary>
    internal sealed class MountTable
    {
        private readonly List<MountEntry> entries;

        private MountTable(List<MountEntry> entries) => this.entries = entries;

        internal IReadOnlyList<MountEntry> Entries => entries;

        internal static MountTable Read() => Parse(File.ReadAllText("/proc/self/mountinfo"));

        internal static MountTable Parse(string text)
        {
            var list = new List<MountEntry>();
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
                string[] f = line.Split(' ');
                int dash = Array.IndexOf(f, "-", 6);
                if (dash < 0 || dash + 2 >= f.Length)
                {
                    continue;
                }

                string[] dev = f[2].Split(':');
                list.Add(new MountEntry(
                    ulong.Parse(f[0], CultureInfo.InvariantCulture),
                    uint.Parse(dev[0], CultureInfo.InvariantCulture),
                    uint.Parse(dev[1], CultureInfo.InvariantCulture),
                    Unescape(f[3]),
                    Unescape(f[4]),
                    f[5],
                    f[dash + 1],
                    Unescape(f[dash + 2]),
                    dash + 3 < f.Length ? f[dash + 3] : string.Empty));
            }

            return new MountTable(list);
        }

        /// <summary>The mount with this id (statx stx_mnt_id), or null.</summary>
        internal MountEntry? ById(ulong mountId) => entries.Find(e => e.MountId == mountId);

        /// <summary>The mount an open file lives on.</summary>
        internal MountEntry? For(OpenFile file) => file.Status.MountId != 0 ? ById(file.Status.MountId) : null;

        /// <summary>Mount points are written with \040 (space), \011 (tab), \012 (newline), \134 (backslash).</summary>
        internal static string Unescape(string s)
        {
            if (!s.Contains('\\', StringComparison.Ordinal))
            {
                return s;
            }

            var bytes = new List<byte>(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                if (s[i] == '\\' && i + 3 < s.Length && IsOctal(s[i + 1]) && IsOctal(s[i + 2]) && IsOctal(s[i + 3]))
                {
                    bytes.Add((byte)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0')));
                    i += 3;
                }
                else
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
                }
            }

            return Encoding.UTF8.GetString(bytes.ToArray());
        }

        private static bool IsOctal(char c) => c is >= '0' and <= '7';
    }
}
