namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// A file with more than one hard link that a run converted under one of its names: <paramref name="Path"/> is that
    /// name, <paramref name="Original"/> the old file as it was once the converted file took its name, <paramref name="Copy"/>
    /// the converted file now under the name (its size and modification time then: the original's); null under -WhatIf, where nothing was
    /// converted and a later name is only previewed as a link.
    /// </summary>
    internal sealed record ConvertedLink(string Path, FileStatus Original, FileStatus? Copy);

    /// <summary>
    /// The hard-linked files a conversion run (-Recurse, or names piped in) has converted, so that each other name of the
    /// same old file it meets later is made a link of the converted file (the names stay links of one file, as cp -a keeps them), never a copy
    /// of its own. An entry goes once all the old file's other names were met, so what is kept follows the hard-linked
    /// files still waiting for a name, not the size of the tree.
    /// </summary>
    internal sealed class ConvertedLinks
    {
        private readonly Dictionary<(uint Major, uint Minor, ulong Inode), (ConvertedLink Link, int Left)> converted = new();

        /// <summary>
        /// At most this many files waiting for another name are kept (about 300 bytes each): in a tree of hard links whose
        /// other names lie outside it (a backup farm) every converted file would wait for good. Past it, a later name gets a
        /// copy of its own, as before.
        /// </summary>
        private const int MostKept = 100_000;

        internal int Count => converted.Count;

        /// <summary>Remembers <paramref name="link"/> if its old file has other names still.</summary>
        internal void Add(ConvertedLink link)
        {
            if (link.Original.Links >= 1 && converted.Count < MostKept)
            {
                converted[Key(link.Original)] = (link, (int)Math.Min(link.Original.Links, int.MaxValue));
            }
        }

        /// <summary>The converted file whose old file <paramref name="file"/> is (another name of it), or null.</summary>
        internal ConvertedLink? Find(in FileStatus file) =>
            converted.TryGetValue(Key(file), out var entry) && entry.Link.Original.SameInode(file) ? entry.Link : null;

        /// <summary>One more of the old file's names was met (made a link, or refused): the entry goes with the last.</summary>
        internal void Met(ConvertedLink link)
        {
            var key = Key(link.Original);
            if (converted.TryGetValue(key, out var entry))
            {
                if (entry.Left <= 1)
                {
                    converted.Remove(key);
                }
                else
                {
                    converted[key] = (entry.Link, entry.Left - 1);
                }
            }
        }

        private static (uint, uint, ulong) Key(in FileStatus file) => (file.DevMajor, file.DevMinor, file.Inode);
    }
}
