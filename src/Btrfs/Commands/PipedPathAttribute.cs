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
        private static readonly ConditionalWeakTable<string, string> NoFile = new();
        private static readonly object Mark = new();

        /// <summary>The string is an object's Path property, taken here: it names a file literally.</summary>
        internal static bool FromObject(string path) => Taken.TryGetValue(path, out _);

        /// <summary>
        /// The type name of the object of this module the string stands for, which names no file (a summary, a total, a
        /// legend line); null for any other string. Such an object bound to -Path by value would be its type name as a
        /// relative path (a hostile review: `Invoke-BtrfsDedupe a b | Invoke-BtrfsDefrag` defragmented a file named
        /// "Btrfs.Core.DedupeResult" in the current directory); every path parameter's resolution refuses it.
        /// </summary>
        internal static string? NamesNoFile(string path) => NoFile.TryGetValue(path, out string? type) ? type : null;

        /// <inheritdoc/>
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            if (Wrapped(inputData) is { } any && any.BaseObject is not (string or System.Array)
                && OfThisModule(any) is string type
                && !(any.Properties["PSPath"]?.Value is string { Length: > 0 } || any.Properties["LiteralPath"]?.Value is string { Length: > 0 } || any.Properties["LP"]?.Value is string { Length: > 0 })
                && !(any.Properties["Path"]?.Value is string { Length: > 0 } || (any.Properties["Path"]?.Value is PSObject { BaseObject: string { Length: > 0 } })))
            {
                // A string of its own, marked: the same text typed elsewhere stays a path.
                string text = new string(System.MemoryExtensions.AsSpan(any.ToString()));
                NoFile.AddOrUpdate(text, type);
                return text;
            }

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

        private static PSObject? Wrapped(object? o) => o is null ? null : PSObject.AsPSObject(o);

        /// <summary>The type name of an object of this module (or of one read back by remoting, Import-Clixml), else null.</summary>
        private static string? OfThisModule(PSObject o)
        {
            if (o.BaseObject.GetType().Assembly == typeof(PipedPathAttribute).Assembly)
            {
                return o.BaseObject.GetType().FullName;
            }

            foreach (string name in o.TypeNames)
            {
                if (name.StartsWith("Deserialized.Btrfs.", System.StringComparison.Ordinal))
                {
                    return name["Deserialized.".Length..];
                }
            }

            return null;
        }
    }
}
