namespace Btrfs.Commands
{
    using System.Collections.Generic;
    using System.Linq;
    using System.Management.Automation;
    using System.Reflection;
    using System.Runtime.CompilerServices;

    /// <summary>
    /// An object bound to a path parameter by value (piped, or given on the command line, alone or in any collection)
    /// names its file, never by its text: PowerShell would otherwise make a path of the whole object ("@{Path=/vm.img;
    /// Length=4096}", or a type name; hostile reviews). An object without PSPath, LiteralPath or LP is bound by its Path
    /// property; an object of this module with a PSPath by that PSPath (as <see cref="ObjectPath"/>: piped, it binds
    /// -LiteralPath by the property instead); an object of this module without a path is marked as naming no file
    /// (<see cref="NamesNoFile"/>), which every path parameter's resolution refuses. A path taken from an object is used
    /// literally wherever it came from (<see cref="FromObject"/>), never expanded as a pattern. Strings and other
    /// objects pass unchanged.
    /// </summary>
    internal sealed class PipedPathAttribute : ArgumentTransformationAttribute
    {
        private static readonly ConditionalWeakTable<string, object> Taken = new();
        private static readonly ConditionalWeakTable<string, SubvolumeUuid> Uuids = new();
        private static readonly ConditionalWeakTable<string, string> NoFile = new();
        private static readonly object Mark = new();

        /// <summary>The types of this module that a cmdlet of it takes whole from the pipeline (its InputObject), by their full names.</summary>
        private static readonly System.Lazy<HashSet<string>> TakenWhole = new(() => typeof(PipedPathAttribute).Assembly.GetTypes()
            .Where(t => typeof(Cmdlet).IsAssignableFrom(t))
            .SelectMany(t => t.GetProperties())
            .Where(p => p.PropertyType != typeof(string) && p.PropertyType != typeof(string[]) && p.GetCustomAttributes<ParameterAttribute>().Any(a => a.ValueFromPipeline))
            .Select(p => (p.PropertyType.IsArray ? p.PropertyType.GetElementType()! : p.PropertyType).FullName ?? string.Empty)
            .ToHashSet(System.StringComparer.Ordinal));

        /// <summary>The string is an object's Path property, taken here: it names a file literally.</summary>
        internal static bool FromObject(string path) => Taken.TryGetValue(path, out _);

        /// <summary>
        /// The type name of the object of this module the string stands for, which names no file (a summary, a total, a
        /// legend line); null for any other string. Such an object bound to -Path by value would be its type name as a
        /// relative path (a hostile review: `Invoke-BtrfsDedupe a b | Invoke-BtrfsDefrag` defragmented a file named
        /// "Btrfs.Core.DedupeResult" in the current directory); every path parameter's resolution refuses it.
        /// </summary>
        internal static string? NamesNoFile(string path) => NoFile.TryGetValue(path, out string? type) ? type : null;

        /// <summary>
        /// The Uuid of the object (a subvolume's) whose path the string is, taken here: a command that checks a subvolume
        /// by its Uuid checks it for an object given on the command line too (-Path $o, -LiteralPath $o), not only for one
        /// piped, which binds -Uuid by its property (a hostile review: given, a stale object deleted or snapshotted the
        /// subvolume now at its path). Null for any other string.
        /// </summary>
        internal static SubvolumeUuid? UuidOf(string? path) => path is not null && Uuids.TryGetValue(path, out SubvolumeUuid? uuid) ? uuid : null;

        /// <inheritdoc/>
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            // Several given at once (-Path $a, $b, or any collection: what .Where() returns, a List): each as one object
            // (reviews: their elements bound as type names).
            object? value = inputData is PSObject wrapper ? wrapper.BaseObject : inputData;
            if (value is not (string or System.Collections.IDictionary) && LanguagePrimitives.GetEnumerable(value) is System.Collections.IEnumerable list)
            {
                var each = new System.Collections.Generic.List<object>();
                foreach (object? item in list)
                {
                    each.Add(item is null ? null! : One(item));
                }

                return each.ToArray();
            }

            return One(inputData);
        }

        private static object One(object inputData)
        {
            if (Wrapped(inputData) is not { } any || any.BaseObject is string or System.Array)
            {
                return inputData;
            }

            if (any.BaseObject is System.Collections.IDictionary dictionary)
            {
                // A hashtable (@{ Path = '...' }) names its file by its Path (or LiteralPath) key, literally; one without
                // names none. Its text is its type name, never a file name (a hostile review: `@{Files=1} | ConvertTo-NoCow`
                // converted a file named "System.Collections.Hashtable" in the current directory).
                object? key = Key(dictionary, "Path").Value ?? Key(dictionary, "LiteralPath").Value;
                if ((key is PSObject wrapped ? wrapped.BaseObject : key) is not string { Length: > 0 } text)
                {
                    return NoFileText(any, key is null ? "hashtable without a Path key" : "hashtable whose Path is not one path");
                }

                // Its Uuid too, as an object's: Remove-BtrfsSubvolume deletes only the subvolume it names (a review: read
                // back with ConvertFrom-Json -AsHashtable, the check was skipped).
                return Key(dictionary, "Uuid") is (true, var uuid) ? Remembered(Literal(text), uuid) : Literal(text);
            }

            if (OfThisModule(any) is string type)
            {
                if (any.Properties["PSPath"] is { } psPath)
                {
                    // An object that names a file by its PSPath: piped, it binds -LiteralPath by that property, and must
                    // not bind -Path by value too (with a parameter set that takes such objects whole, Show-ExtentMap's
                    // or Remove-BtrfsSubvolume's, that would be ambiguous): what is returned is no string, which the
                    // pipeline's first binding takes as it is, and becomes the path only where a value is converted (given
                    // on the command line: -Path $result). One without a path (no mount reaches it) names no file.
                    // Without a path its PSPath is null, and would bind -LiteralPath by property name as that: the binder's
                    // own "The argument is null or empty" (a hostile review). As text it binds -Path by value, refused there;
                    // except an object some cmdlet takes whole (a subvolume Remove-BtrfsSubvolume deletes by its id), which
                    // would bind both ways there.
                    return psPath.Value is string { Length: > 0 } qualified && qualified.StartsWith(PathBinding.FileSystemPrefix, System.StringComparison.Ordinal)
                        ? new ObjectPath(WithUuid(Literal(qualified[PathBinding.FileSystemPrefix.Length..]), any))
                        : TakenWhole.Value.Contains(type) ? new ObjectPath(NoFileText(any, type)) : NoFileText(any, type);
                }

                if (!(any.Properties["Path"]?.Value is string { Length: > 0 } || (any.Properties["Path"]?.Value is PSObject { BaseObject: string { Length: > 0 } }))
                    && any.Properties["LiteralPath"] is null && any.Properties["LP"] is null)
                {
                    return NoFileText(any, type);
                }
            }

            if (any.BaseObject is PSCustomObject && any.Properties["PSPath"] is null && any.Properties["LiteralPath"] is null
                && any.Properties["LP"] is null && any.Properties["Path"] is null)
            {
                // An object made of properties (ConvertFrom-Json, Import-Csv, Select-Object) with no path among them: its text
                // ("@{Files=10; Bytes=...}") is never a file name (a hostile review: a summary read back from JSON was
                // looked up as '/tmp/@{Files=10; ...}').
                return NoFileText(any, "PSCustomObject without a Path property");
            }

            if (any.Properties["PSPath"] is null && any.Properties["LiteralPath"] is null && any.Properties["LP"] is null
                && any.Properties["Path"] is { } property)
            {
                string? text = property.Value as string ?? (property.Value as PSObject)?.BaseObject as string;
                if (property.Value is null || text is { Length: 0 })
                {
                    // A Path that is empty (read back from JSON or CSV: a subvolume no mount reaches) names no file: its
                    // text ("@{Id=257; ...}") is never a path (a review, a hostile test: "Cannot find drive '@{Id=257'").
                    return NoFileText(any, any.TypeNames.Count > 0 ? any.TypeNames[0] : any.BaseObject.GetType().FullName ?? "object");
                }

                if (text is not null)
                {
                    return WithUuid(Literal(text), any);
                }
            }

            return inputData;
        }

        /// <summary>Whether a dictionary has the key <paramref name="name"/>, and its value (none where its keys cannot be compared with a string, as a SortedList of numbers).</summary>
        private static (bool Has, object? Value) Key(System.Collections.IDictionary dictionary, string name)
        {
            try
            {
                return dictionary.Contains(name) ? (true, dictionary[name]) : (false, null);
            }
            catch (System.Exception ex) when (ex is System.InvalidOperationException or System.ArgumentException)
            {
                return (false, null);
            }
        }

        /// <summary>A copy of <paramref name="path"/> of its own, marked as naming a file literally (the mark must not reach the same text typed elsewhere).</summary>
        private static string Literal(string path)
        {
            string copy = new string(System.MemoryExtensions.AsSpan(path));
            Taken.AddOrUpdate(copy, Mark);
            return copy;
        }

        /// <summary>The path, with the Uuid of the object it came from remembered (<see cref="UuidOf"/>) where it has one.</summary>
        private static string WithUuid(string path, PSObject any)
        {
            return any.Properties["Uuid"] is { } property ? Remembered(path, property.Value) : path;
        }

        /// <summary>
        /// The path, with <paramref name="uuid"/> remembered for it (<see cref="UuidOf"/>). Empty or null too: then the command
        /// refuses it (InvalidArgument), as it refuses a piped one, never taking it as none (a review).
        /// </summary>
        private static string Remembered(string path, object? uuid)
        {
            Uuids.AddOrUpdate(path, new SubvolumeUuid(uuid));
            return path;
        }

        /// <summary>The object's text, of its own, marked as an object of this module that names no file (<see cref="NamesNoFile"/>).</summary>
        private static string NoFileText(PSObject any, string type)
        {
            string text = new string(System.MemoryExtensions.AsSpan(any.ToString()));
            NoFile.AddOrUpdate(text, type);
            return text;
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

    /// <summary>
    /// The path of an object of this module that names a file by its PSPath, bound by value: no string, so the pipeline's
    /// binding without conversion passes it over (the object binds -LiteralPath by its PSPath there); converted to a
    /// string (an argument on the command line) it is that path, marked literal.
    /// </summary>
    internal sealed class ObjectPath
    {
        private readonly string path;

        internal ObjectPath(string path) => this.path = path;

        /// <inheritdoc/>
        public override string ToString() => path;
    }
}
