namespace Btrfs.Commands
{
    using System.Management.Automation;
    using System.Runtime.CompilerServices;

    /// <summary>
    /// An object without PSPath, LiteralPath or LP bound to -Path by value (piped, as when another of its properties,
    /// such as a numeric Length, bound first; or given on the command line) is bound by its Path property, not by its
    /// text: PowerShell would otherwise make a path of the whole object ("@{Path=/vm.img; Length=4096}"; a hostile
    /// review: `Get-BtrfsExtent f | Select Path,LogicalOffset,Length | Get-BtrfsExtentOwner`). That path names a file:
    /// it is used literally wherever it came from (<see cref="FromObject"/>), never expanded as a pattern. Strings,
    /// arrays and objects without a Path property pass unchanged; an object with PSPath, LiteralPath or LP binds
    /// -LiteralPath by that property.
    /// </summary>
    internal sealed class PipedPathAttribute : ArgumentTransformationAttribute
    {
        private static readonly ConditionalWeakTable<string, object> Taken = new();
        private static readonly object Mark = new();

        /// <summary>The string is an object's Path property, taken here: it names a file literally.</summary>
        internal static bool FromObject(string path) => Taken.TryGetValue(path, out _);

        /// <inheritdoc/>
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            if (inputData is PSObject wrapped && wrapped.BaseObject is not (string or System.Array)
                && wrapped.Properties["PSPath"] is null && wrapped.Properties["LiteralPath"] is null && wrapped.Properties["LP"] is null
                && wrapped.Properties["Path"] is { } property
                && (property.Value is string || (property.Value is PSObject p && p.BaseObject is string)))
            {
                // A copy of its own: the mark must not reach the same text typed elsewhere (a variable, a literal).
                string path = new string(System.MemoryExtensions.AsSpan(property.Value as string ?? (string)((PSObject)property.Value).BaseObject));
                Taken.AddOrUpdate(path, Mark);
                return path;
            }

            return inputData;
        }
    }
}
