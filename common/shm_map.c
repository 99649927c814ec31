/*
 * shm_map.c - open and map shared memory files and PCI BARs, with errors
 * that tell the user what to do next.
 */
#include "shm_map.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Map fd (size bytes) shared read-write into m; -1 with errno set. */
static int map_fd(int fd, size_t size, struct ivb_map *m)
{
	/* Populate now, so first-touch page faults do not land in a measurement. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);

	if (p == MAP_FAILED)
		return -1;
	m->base = p;
	m->size = size;
	return 0;
}

int ivb_map_file(const char *path, size_t min_size, int flags, struct ivb_map *m, char *err,
		 size_t errlen)
{
	struct statfs fs;
	struct stat st;
	int fd;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	snprintf(m->source, sizeof(m->source), "%s", path);
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s%s", path, errno == ELOOP ? "is a symlink; refusing to "
			 "follow it (give the file it points to, if it is yours)" : strerror(errno),
			 errno == ENOENT ? " (is the VM running? start it with ./setup.sh)" :
			 errno == EACCES ? " (run as the user that started the VM, or as root)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((uint64_t)st.st_size < min_size) {
		snprintf(err, errlen, "%s: too small: %lld bytes, need at least %zu",
			 path, (long long)st.st_size, min_size);
		goto fail;
	}
	if (!(flags & IVB_MAP_ANY_FS) && fs.f_type != TMPFS_MAGIC && fs.f_type != HUGETLBFS_MAGIC) {
		snprintf(err, errlen, "%s: not on tmpfs or hugetlbfs, so not shared memory QEMU "
			 "would use; refusing to write into it (--shm-any-fs overrides)", path);
		goto fail;
	}
	if (map_fd(fd, (size_t)st.st_size, m) < 0)
		goto fail_errno;
	m->fd = fd;
	return 0;

fail_errno:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
fail:
	close(fd);
	return -1;
}

long long ivb_map_file_size(const struct ivb_map *m)
{
	struct stat st;

	if (m->fd < 0 || fstat(m->fd, &st) < 0)
		return -1;
	return (long long)st.st_size;
}

int ivb_map_fd(int fd, size_t size, const char *source, struct ivb_map *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	snprintf(m->source, sizeof(m->source), "%s", source);
	if (map_fd(fd, size, m) < 0) {
		snprintf(err, errlen, "%s: mmap of %zu bytes: %s", source, size, strerror(errno));
		return -1;
	}
	return 0;
}

/* Read a hex number such as "0x1af4" from a sysfs attribute file. */
static int read_hex(const char *dir, const char *name, unsigned *out)
{
	char path[512], buf[32];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	*out = (unsigned)strtoul(buf, NULL, 16);
	return 0;
}

int ivb_pci_find(const char *sysfs_root, unsigned vendor, unsigned device, int index,
		 char *bdf, size_t len)
{
	struct dirent **names;
	int n, i, found = -1;

	n = scandir(sysfs_root, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		char dir[512];
		unsigned v, d;

		if (names[i]->d_name[0] != '.' && found < 0) {
			snprintf(dir, sizeof(dir), "%s/%s", sysfs_root, names[i]->d_name);
			if (!read_hex(dir, "vendor", &v) && !read_hex(dir, "device", &d) &&
			    v == vendor && d == device && index-- == 0) {
				snprintf(bdf, len, "%s", names[i]->d_name);
				found = 0;
			}
		}
		free(names[i]);
	}
	free(names);
	return found;
}

const char *ivb_bar_map_name(enum ivb_bar_map how)
{
	return how == IVB_BAR_MAP_WC ? "wc" : how == IVB_BAR_MAP_VFIO ? "vfio" : "uc";
}

int ivb_map_inherited_fd(int fd, size_t min_size, struct ivb_map *m, char *err, size_t errlen)
{
	char link[64], target[256];
	struct statfs fs;
	struct stat st;
	ssize_t n;
	int own;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	snprintf(m->source, sizeof(m->source), "fd %d (%s)", fd, n > 0 ? target : "?");
	if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0) {
		snprintf(err, errlen, "--shm-fd %d: %s (the descriptor must be inherited, open "
			 "read-write)", fd, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (fs.f_type != TMPFS_MAGIC && fs.f_type != HUGETLBFS_MAGIC)) {
		snprintf(err, errlen, "--shm-fd %d: %s is not a memfd nor a file on tmpfs or hugetlbfs",
			 fd, m->source);
		return -1;
	}
	if ((uint64_t)st.st_size < min_size) {
		snprintf(err, errlen, "--shm-fd %d: too small: %lld bytes, need at least %zu", fd,
			 (long long)st.st_size, min_size);
		return -1;
	}
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0 || map_fd(own, (size_t)st.st_size, m) < 0) {
		snprintf(err, errlen, "--shm-fd %d: %s", fd, strerror(errno));
		if (own >= 0)
			close(own);
		return -1;
	}
	m->fd = own;
	return 0;
}

int ivb_map_pci_bar(const char *sysfs_root, const char *bdf, int bar, enum ivb_bar_map how,
		    struct ivb_map *m, char *err, size_t errlen)
{
	const char *suffix = how == IVB_BAR_MAP_WC ? "_wc" : "";
	char path[512];
	struct stat st;
	int fd;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	/* Make sure memory decoding is on; harmless when it already is. */
	snprintf(path, sizeof(path), "%s/%s/enable", sysfs_root, bdf);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* Already enabled by a driver: not an error. */
		}
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/%s/resource%d%s", sysfs_root, bdf, bar, suffix);
	snprintf(m->source, sizeof(m->source), "%s", path);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && how == IVB_BAR_MAP_WC) {
		snprintf(err, errlen, "--bar-map wc: not available: %s is missing (the kernel makes "
			 "resource%d_wc only for a prefetchable BAR)", path, bar);
		return -1;
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		snprintf(err, errlen, "%s: cannot tell the BAR size", path);
		close(fd);
		return -1;
	}
	if (map_fd(fd, (size_t)st.st_size, m) < 0) {
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void ivb_unmap(struct ivb_map *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->base = NULL;
	m->size = 0;
}
