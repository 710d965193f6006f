/* filewatch.c: see filewatch.h. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "filewatch.h"

struct seen {
	char *path;
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

struct filewatch {
	struct seen *v;
	size_t n;
};

/* What path is now, into *s (path untouched). */
static void
look(struct seen *s)
{
	struct stat st;

	s->exists = stat(s->path, &st) == 0;
	if (!s->exists) {
		s->dev = 0;
		s->ino = 0;
		s->size = 0;
		memset(&s->mtim, 0, sizeof(s->mtim));
		memset(&s->ctim, 0, sizeof(s->ctim));
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtim = st.st_mtim;
	s->ctim = st.st_ctim;
}

static int
same(const struct seen *a, const struct seen *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec && a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

struct filewatch *
filewatch_new(void)
{
	return calloc(1, sizeof(struct filewatch));
}

void
filewatch_free(struct filewatch *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].path);
	free(w->v);
	free(w);
}

static int
by_path(const void *a, const void *b)
{
	return strcmp(((const struct seen *)a)->path, ((const struct seen *)b)->path);
}

int
filewatch_set(struct filewatch *w, const char *const *paths, size_t n)
{
	struct seen *v = calloc(n ? n : 1, sizeof(*v)), *old;
	size_t k = 0, m = 0;

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (paths[i] != NULL && (v[k++].path = strdup(paths[i])) == NULL)
			goto err;
	/* sorted (the watch keeps its set so): duplicates side by side, and
	 * each path found in the old set by bisection, for many hosts */
	qsort(v, k, sizeof(*v), by_path);
	for (size_t i = 0; i < k; i++) {
		if (m > 0 && strcmp(v[m - 1].path, v[i].path) == 0) {
			free(v[i].path);
			continue;
		}
		char *path = v[i].path;
		old = w->n > 0 ? bsearch(&v[i], w->v, w->n, sizeof(*v), by_path) : NULL;
		if (old != NULL)
			v[m] = *old;	/* its identity last seen */
		v[m].path = path;
		if (old == NULL)
			look(&v[m]);
		m++;
	}
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].path);
	free(w->v);
	w->v = v;
	w->n = m;
	return 0;
err:
	for (size_t i = 0; i < k; i++)
		free(v[i].path);
	free(v);
	return -1;
}

void
filewatch_snapshot(struct filewatch *w)
{
	for (size_t i = 0; i < w->n; i++)
		look(&w->v[i]);
}

size_t
filewatch_check(struct filewatch *w, const char **first)
{
	size_t changed = 0;

	*first = NULL;
	for (size_t i = 0; i < w->n; i++) {
		struct seen now = w->v[i];

		look(&now);
		if (same(&now, &w->v[i]))
			continue;
		w->v[i] = now;
		if (changed++ == 0)
			*first = w->v[i].path;
	}
	return changed;
}
