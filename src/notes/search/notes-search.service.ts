import { Injectable } from '@nestjs/common';
import type { Page } from '../../common/pagination';
import { highlightOf, type Highlight } from './highlight';
import { NotesSearchRepository, type SearchRow } from './notes-search.repository';
import { encodeSearchCursor, type SearchCursor } from './search-cursor';
import { isEmptySearch, parseSearchQuery } from './search-query';

export interface SearchHit extends SearchRow {
  highlight: Highlight | null;
}

/** Search acts for one owner and sees only that owner's notes (docs/search.md). */
@Injectable()
export class NotesSearchService {
  constructor(private readonly search: NotesSearchRepository) {}

  /** Anything typed is a query: a 400 naming `q` only past the documented bounds, else a page (maybe empty). */
  async find(ownerId: string, q: string, limit: number, after?: SearchCursor): Promise<Page<SearchHit>> {
    const query = parseSearchQuery(q);
    if (isEmptySearch(query)) return { items: [], nextCursor: null };
    const rows = await this.search.search(ownerId, query, limit + 1, after);
    const items = rows.slice(0, limit).map((row) => ({ ...row, highlight: highlightOf(row.body, query) }));
    const last = items[items.length - 1];
    return {
      items,
      nextCursor:
        rows.length > limit && last
          ? encodeSearchCursor({ titleMatch: last.titleMatch, updatedAt: new Date(last.updatedAt), id: last.id })
          : null,
    };
  }
}
