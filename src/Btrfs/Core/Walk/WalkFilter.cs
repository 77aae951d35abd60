namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>
    /// What a -Recurse walk takes, as Get-ChildItem's -Include, -Exclude and -Depth: files whose name an
    /// include test accepts (all when there is none) and no exclude test matches; directories are entered
    /// unless an exclude test matches their name (then neither they nor anything below them is
    /// handed out) or they lie deeper than <see cref="Depth"/> (then they are handed out, not entered),
    /// and are themselves processed only when the include test takes their name too
    /// (<see cref="ProcessesDirectory"/>).
    /// The tests on names come from the caller (wildcards are PowerShell's to match).
    /// </summary>
    public sealed class WalkFilter
    {
        private readonly Func<string, bool>? include;
        private readonly Func<string, bool>? exclude;

        /// <summary>A filter from name tests (null: no test) and a depth (null: no limit; 0: only the starting directory's own entries).</summary>
        public WalkFilter(Func<string, bool>? include, Func<string, bool>? exclude, int? depth)
        {
            if (depth is < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(depth));
            }

            this.include = include;
            this.exclude = exclude;
            Depth = depth;
        }

        /// <summary>No filter: every entry, every depth.</summary>
        public static WalkFilter None { get; } = new(null, null, null);

        /// <summary>Levels of directories below the starting one that are entered (null: all).</summary>
        public int? Depth { get; }

        /// <summary>True when names are tested at all.</summary>
        public bool TestsNames => include is not null || exclude is not null;

        /// <summary>Is a file (or a symbolic link, FIFO, ...) of this name taken?</summary>
        public bool TakesFile(string name) => (include?.Invoke(name) ?? true) && !(exclude?.Invoke(name) ?? false);

        /// <summary>Is a directory of this name walked (handed out and entered unless too deep)? Only -Exclude says no.</summary>
        public bool TakesDirectory(string name) => !(exclude?.Invoke(name) ?? false);

        /// <summary>
        /// Is a directory of this name itself processed (marked, tested)? Like a file: -Include must take
        /// its name too. A directory that is walked but not processed only leads to what is below it.
        /// </summary>
        public bool ProcessesDirectory(string name) => TakesDirectory(name) && (include?.Invoke(name) ?? true);

        /// <summary>Is a directory at <paramref name="depth"/> (1: a child of the starting directory) entered?</summary>
        public bool Enters(int depth) => Depth is not int limit || depth <= limit;
    }
}
