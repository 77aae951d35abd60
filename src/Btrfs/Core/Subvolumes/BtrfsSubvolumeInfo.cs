namespace Btrfs.Core
{
    using System;

    /// <summary>
    /// One btrfs subvolume or snapshot: Get-BtrfsSubvolume's object, and what New-BtrfsSubvolume and
    /// New-BtrfsSnapshot emit. Every property is a scalar (uuids as Guid, in the order btrfs prints
    /// them), so Where-Object, Sort-Object, Export-Csv and remoting keep the values.
    /// </summary>
    public sealed class BtrfsSubvolumeInfo
    {
        /// <summary>The subvolume id (tree id); 5 is the top level.</summary>
        public ulong Id { get; init; }

        /// <summary>The subvolume's name (its last path component; "&lt;FS_TREE&gt;" for the top level).</summary>
        public string Name { get; init; } = string.Empty;

        /// <summary>The absolute path of the subvolume's root directory through a mount of the filesystem; null when no mount reaches it.</summary>
        public string? Path { get; init; }

        /// <summary>The path from the filesystem's top level ("/" for the top level itself, "/vm/snap" below it); null when unknown (not root and no mount shows it).</summary>
        public string? TopLevelPath { get; init; }

        /// <summary>The subvolume holding this one (the tree its directory entry is in); 0 for the top level.</summary>
        public ulong ParentId { get; init; }

        /// <summary>The same as <see cref="ParentId"/>: what `btrfs subvolume list` calls "top level".</summary>
        public ulong TopLevelId => ParentId;

        /// <summary>The subvolume's uuid.</summary>
        public Guid Uuid { get; init; }

        /// <summary>For a snapshot: the uuid of the subvolume it was taken of; null for a subvolume created empty.</summary>
        public Guid? ParentUuid { get; init; }

        /// <summary>For a snapshot: the path of its source where that still exists and a mount reaches it.</summary>
        public string? SourcePath { get; init; }

        /// <summary>For a received subvolume (btrfs receive): the uuid of the subvolume sent; null otherwise.</summary>
        public Guid? ReceivedUuid { get; init; }

        /// <summary>The transaction that last changed the subvolume's tree.</summary>
        public ulong Generation { get; init; }

        /// <summary>The transaction that created it (`btrfs subvolume list -c`'s "cgen", `show`'s "Gen at creation").</summary>
        public ulong CreationGeneration { get; init; }

        /// <summary>
        /// When it was created, in this computer's local time, as FileInfo.CreationTime and Get-Date give theirs, so that
        /// "CreationTime -lt (Get-Date).AddDays(-7)" compares like with like (PowerShell compares times by their clock
        /// readings, whatever zone they are in: a UTC time made a snapshot of a second ago an hour old in Berlin, and a
        /// retention filter offered to delete it; a hostile review). Null on filesystems made before subvolume times existed.
        /// </summary>
        public DateTime? CreationTime => CreationTimeUtc?.ToLocalTime();

        /// <summary>When it was created, in UTC (<see cref="CreationTime"/> in local time).</summary>
        public DateTime? CreationTimeUtc { get; init; }

        /// <summary>Read-only (a read-only snapshot, or `btrfs property set ro true`).</summary>
        public bool IsReadOnly { get; init; }

        /// <summary>A snapshot (it has a <see cref="ParentUuid"/>).</summary>
        public bool IsSnapshot => ParentUuid is not null;

        /// <summary>The filesystem's default subvolume (mounted when no subvol= is given); null when not known (reading it needs root).</summary>
        public bool? IsDefault { get; init; }

        /// <summary>A mount point whose root is this subvolume (mounted with subvol= or subvolid=, or as the default): the first of <see cref="MountPoints"/>; null when none.</summary>
        public string? MountPoint => MountPoints.Length > 0 ? MountPoints[0] : null;

        /// <summary>Every mount point whose root is this subvolume, in mount order (empty when none).</summary>
        public string[] MountPoints { get; init; } = System.Array.Empty<string>();

        /// <summary>
        /// A path on the subvolume's filesystem: the one it was listed through. With <see cref="Id"/> it names
        /// a subvolume that no mount reaches (Path null) to Measure-BtrfsSubvolume -Id.
        /// </summary>
        public string? FileSystemPath { get; init; }

        /// <summary>The device number its files show (stat), from the descriptor it was listed through; null when listed from the root tree.</summary>
        internal (uint Major, uint Minor)? Device { get; init; }

        /// <summary>No <see cref="TopLevelPath"/>: the kernel's lookup refused it as too long (ENAMETOOLONG), and the kernel deletes by a path it builds no longer than that.</summary>
        internal bool PathTooLong { get; init; }

        /// <inheritdoc/>
        public override string ToString() => Path ?? TopLevelPath ?? Name;

        /// <summary>
        /// Why a subvolume has no Path, for messages: its path from the top level holds bytes that are not UTF-8 (shown
        /// as U+FFFD: the kernel's names are bytes), which no PowerShell path can hold although a mount may reach it;
        /// otherwise no mount reaches it.
        /// </summary>
        internal static string WhyNoPath(string? topLevelPath) =>
            topLevelPath?.Contains('\uFFFD', System.StringComparison.Ordinal) == true
                ? "its name, or a directory's on the way, is not valid UTF-8, which no PowerShell path can hold"
                : "no mount reaches it";
    }
}
